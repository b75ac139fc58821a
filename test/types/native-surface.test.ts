/**
 * Types checked like code. ts-jest type-checks this file (a type error, or a
 * `@ts-expect-error` line that no longer errors, fails the suite), and so does
 * `tsc -p tsconfig.json --noEmit`. The runtime half keeps the typed list of
 * addon exports and the loaded binary in step.
 */
import { expectTypeOf } from 'expect-type';
import { native, type NativeAddon, type NativeCudaApi, type NativeInfo, type NativeModelApi, type NativeModelConfig } from '../../src/native';
import { MODEL_KINDS, type ModelConfig, type ModelKind } from '../../src/model/config';
import { POLICY_NAMES, type PolicyName } from '../../src/batching';
import type { ScheduleSpec, ScheduleText } from '../../src/train/schedule';
import type { TrainOptions } from '../../src/train/trainer';

/** Every export of the `.node` file (native/addon/*.cpp), sorted. */
const ADDON_EXPORTS = [
  'adamUpdate', 'buildNeighbours', 'buildNeighboursAsync', 'copyGraphSlicesBench', 'createPlan',
  'cudaCreateModel', 'cudaCreatePlan', 'cudaDownloadParams', 'cudaPlanInfo', 'cudaPredict', 'cudaTrainStep',
  'cudaUploadStore', 'flopsCount', 'forceGrad', 'forceLossAndGrad', 'forcesStep', 'gatherRows', 'gatherRowsBackward', 'gemmBench', 'getProfile', 'getThreads',
  'info', 'kernelSites', 'lossAndGrad', 'memcpyBench', 'modelLayout', 'packGraphs', 'planInfo', 'predict',
  'predictAsync', 'releasePlan', 'resetFlops', 'segmentCsrBackward', 'segmentMeanCsr', 'segmentSum', 'segmentSumCsr',
  'setProfile', 'setThreads', 'streamBench', 'takeProfileRecords', 'trainStep', 'trainStepAsync', 'validateStore',
] as const;

describe('the native surface', () => {
  test('NativeAddon lists exactly the exports of the binary (no index signature)', () => {
    // Type level: the members are exactly these names, so neither an extra
    // member nor a `[key: string]` signature (keyof would widen to string) fits.
    expectTypeOf<keyof NativeAddon>().toEqualTypeOf<(typeof ADDON_EXPORTS)[number]>();
    expectTypeOf<string extends keyof NativeAddon ? true : false>().toEqualTypeOf<false>();
    // Run time: the loaded addon exports exactly the typed names, all functions.
    const addon = native();
    const keys = Object.keys(addon).sort();
    expect(keys).toEqual([...ADDON_EXPORTS]);
    for (const k of keys) expect(typeof (addon as unknown as Record<string, unknown>)[k]).toBe('function');
  });

  test('a misspelt native call does not compile; the parts are views of the same object', () => {
    const addon = native();
    // @ts-expect-error -- typo of packGraphs: not a member of NativeAddon
    expect(addon.packGraph).toBeUndefined();
    // @ts-expect-error -- typo of getThreads
    expect(() => addon.getThread()).toThrow(TypeError);
    // The model and CUDA parts need no cast: NativeAddon is both of them.
    expectTypeOf<NativeAddon>().toMatchTypeOf<NativeModelApi>();
    expectTypeOf<NativeAddon>().toMatchTypeOf<NativeCudaApi>();
    expectTypeOf(addon.getThreads()).toEqualTypeOf<number>();
    expectTypeOf<NativeInfo['backend']>().toEqualTypeOf<'cpu'>();
    // Model configs are typed at the boundary (not `object`): ModelConfig is one, a wrong kind is not.
    expectTypeOf<ModelConfig>().toMatchTypeOf<NativeModelConfig>();
    expectTypeOf<NativeModelConfig['kind']>().toEqualTypeOf<ModelKind>();
    expectTypeOf<Parameters<NativeAddon['createPlan']>[0]>().toEqualTypeOf<NativeModelConfig>();
    // @ts-expect-error -- not a model kind
    const wrongKind: NativeModelConfig = { kind: 'gcn' };
    expect(wrongKind.kind).toBe('gcn');
  });
});

describe('string unions of the public options', () => {
  test('ModelKind and PolicyName are the exact registered names', () => {
    expectTypeOf<ModelKind>().toEqualTypeOf<'mpeu' | 'schnet' | 'painn'>();
    expectTypeOf<PolicyName>().toEqualTypeOf<'static-2pow' | 'static-64' | 'static-constant' | 'dynamic' | 'packed' | 'exact'>();
    expect([...MODEL_KINDS].sort()).toEqual(['mpeu', 'painn', 'schnet']);
    expect([...POLICY_NAMES].sort()).toEqual(['dynamic', 'exact', 'packed', 'static-2pow', 'static-64', 'static-constant']);
  });

  test('train options take unions, not any string', () => {
    expectTypeOf<NonNullable<TrainOptions['device']>>().toEqualTypeOf<'cpu' | 'cuda' | 'auto'>();
    expectTypeOf<ScheduleSpec['kind']>().toEqualTypeOf<'constant' | 'exponential' | 'cosine'>();
    expectTypeOf<NonNullable<NonNullable<TrainOptions['model']>['kind']>>().toEqualTypeOf<ModelKind>();
    expectTypeOf<TrainOptions['policy']>().toEqualTypeOf<PolicyName>();
    expectTypeOf<NonNullable<TrainOptions['schedule']>>().toEqualTypeOf<ScheduleSpec | ScheduleText>();
    expectTypeOf<NonNullable<TrainOptions['signal']>>().toEqualTypeOf<AbortSignal>();
    expectTypeOf<'cosine:1e-6'>().toMatchTypeOf<ScheduleText>();
    // @ts-expect-error -- not a device
    const bad: TrainOptions['device'] = 'gpu';
    expect(bad).toBe('gpu');
    // @ts-expect-error -- a misspelt policy does not compile
    const typo: TrainOptions['policy'] = 'dynamc';
    expect(typo).toBe('dynamc');
    // @ts-expect-error -- not a schedule
    const sched: TrainOptions['schedule'] = 'linear';
    expect(sched).toBe('linear');
  });
});
