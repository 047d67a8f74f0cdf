// Text into HTML safely: every report page (walkthrough, probes, plots) escapes user text —
// token strings especially, which can hold any character — through this one function.
export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")
