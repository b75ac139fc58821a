/** The train command reports train()'s option-named errors in flag terms. */
import { registerTrainCommand, inFlagTerms } from '../../src/cli/train';
import { native } from '../../src/native';
import { runCli } from '../helpers/cli';

const run = (args: string[]): Promise<string> => runCli(registerTrainCommand, args);

test('inFlagTerms maps the option names train() uses to the command flags', () => {
  expect(inFlagTerms("device 'cuda': gradient clipping is not supported on the CUDA engine (use device 'cpu')")).toBe('--device cuda: gradient clipping is not supported on the CUDA engine (use --device cpu)');
  expect(inFlagTerms("(try clipNorm, a lower lr, or check these graphs' distances and targets)")).toBe("(try --clip, a lower --lr, or check these graphs' distances and targets)");
  expect(inFlagTerms('unrelated device text')).toBe('unrelated device text');
});

const info = native().info();
(info.cuda.compiled && info.cuda.devices > 0 ? test.skip : test)('--device cuda without a usable GPU names the flag, keeping the code', async () => {
  const code = info.cuda.compiled ? 'ERR_GNN_NO_DEVICE' : 'ERR_GNN_NO_CUDA';
  await expect(run(['train', 'qm9-like:30', '--steps', '1', '--device', 'cuda'])).rejects.toMatchObject({ code, message: expect.stringMatching(/^--device cuda: this build .*use --device cpu/) });
});
