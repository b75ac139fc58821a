/** The one conversion from standardised outputs to target units (src/model/forces.ts): energies and forces scale alike, also for a constant target (std 0). */
import { energyScale, toTargetUnits } from '../../src/model/forces';

test('toTargetUnits: z std + mean + offset; std 0 scales by 1 like energyScale', () => {
  expect(toTargetUnits(2, -1, 0.5)).toBe(0);
  expect(toTargetUnits(2, -1, 0.5, 3)).toBe(3);
  expect(toTargetUnits(2, -1, 0)).toBe(1);
  expect(energyScale({ targetMean: -1, targetStd: 0 } as Parameters<typeof energyScale>[0])).toBe(1);
  // The energy of a constant-target model and its forces' scale agree: d(toTargetUnits)/dz = energyScale.
  for (const std of [0, 0.25, 3]) expect(toTargetUnits(1, 0, std) - toTargetUnits(0, 0, std)).toBe(energyScale({ targetMean: 0, targetStd: std } as Parameters<typeof energyScale>[0]));
});
