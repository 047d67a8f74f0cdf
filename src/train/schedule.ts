// Learning-rate schedule: linear warmup, then cosine decay to a floor (as in nanoGPT).
//   step < warmup:        lr·(step+1)/(warmup+1)      (the first step already moves)
//   warmup ≤ step ≤ total: min + ½(1 + cos(π·r))·(lr − min),  r = (step − warmup)/(total − warmup)
//   step > total:         min
// Warmup keeps the first updates small while AdamW's second-moment estimate is still noisy.

export interface ScheduleConfig {
  readonly lr: number
  readonly minLr: number
  readonly warmupSteps: number
  readonly totalSteps: number
}

export const learningRate = (s: ScheduleConfig, step: number): number => {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1)
  if (step >= s.totalSteps) return s.minLr
  const span = Math.max(1, s.totalSteps - s.warmupSteps)
  const ratio = (step - s.warmupSteps) / span
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - s.minLr)
}
