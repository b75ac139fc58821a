/**
 * `gnnbatch drive CHECKPOINT --unix NAME | --ipi HOST:PORT --structure FILE`:
 * the checkpoint as an i-PI force engine (src/drive/driver.ts) for ASE's
 * SocketIOCalculator, i-PI, LAMMPS `fix ipi`. The structure file gives the
 * species and periodicity (the protocol sends coordinates only).
 */
import type { Command } from 'commander';
import { createDriver, ENERGY_UNITS_IN_EV, type EnergyUnit } from '../drive/driver';
import { parseInetAddress, unixSocketPath, type DriverAddress } from '../drive/ipi';
import { readStructures } from '../data/source';
import { UsageError } from '../errors';

interface DriveFlags {
  unix?: string;
  ipi?: string;
  structure?: string;
  numbers?: string;
  energyUnit: string;
  connectTimeout: string;
  stress: boolean;
  threads?: string;
}

function seconds(flag: string, text: string): number {
  const v = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(v > 0)) throw new UsageError(`${flag} takes a positive number of seconds, got '${text}'`);
  return v * 1000;
}

/** Registers `gnnbatch drive`. */
export function registerDriveCommand(program: Command): void {
  program
    .command('drive <checkpoint>')
    .description('serve a checkpoint as an i-PI force engine (ASE SocketIOCalculator, i-PI, LAMMPS fix ipi): energies, forces, virial')
    .option('--unix <name>', 'connect to the Unix socket /tmp/ipi_NAME (or the path NAME when it contains a slash)')
    .option('--ipi <host:port>', 'connect over TCP')
    .option('--structure <file>', 'the driven system (first frame of an xyz/extxyz/ASE db file): species, order and periodicity')
    .option('--numbers <list>', 'the driven system as atomic numbers, e.g. 8,1,1 (instead of --structure)')
    .option('--energy-unit <unit>', `unit of the model's energy target: ${Object.keys(ENERGY_UNITS_IN_EV).join(', ')}`, 'eV')
    .option('--connect-timeout <s>', 'keep trying to connect this long while the server is not up', '60')
    .option('--no-stress', 'send a zero virial even for periodic systems')
    .action(async (checkpoint: string, flags: DriveFlags) => {
      if (!flags.unix === !flags.ipi) throw new UsageError('give exactly one of --unix NAME and --ipi HOST:PORT');
      if (!flags.structure === !flags.numbers) throw new UsageError('give exactly one of --structure FILE and --numbers LIST');
      if (!(flags.energyUnit in ENERGY_UNITS_IN_EV)) throw new UsageError(`--energy-unit must be one of ${Object.keys(ENERGY_UNITS_IN_EV).join(', ')}, got '${flags.energyUnit}'`);
      let address: DriverAddress;
      try {
        address = flags.unix ? { kind: 'unix', name: flags.unix } : parseInetAddress(flags.ipi!);
      } catch (e) {
        throw new UsageError(`--ipi: ${(e as Error).message}`);
      }
      let numbers: number[];
      let pbc: [boolean, boolean, boolean] | undefined;
      if (flags.numbers) {
        numbers = flags.numbers.split(',').map((t) => {
          const z = Number(t.trim());
          if (!/^\d+$/.test(t.trim()) || z < 1 || z > 118) throw new UsageError(`--numbers: '${t}' is not an atomic number 1..118`);
          return z;
        });
      } else {
        const first = await readStructures(flags.structure!)[Symbol.asyncIterator]().next();
        if (first.done) throw new UsageError(`--structure ${flags.structure}: the file holds no structure`);
        numbers = Array.from(first.value.numbers);
        pbc = first.value.cell ? first.value.pbc : undefined;
      }
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const driver = createDriver(checkpoint, { numbers, pbc }, {
        energyUnit: flags.energyUnit as EnergyUnit, stress: flags.stress, connectTimeoutMs: seconds('--connect-timeout', flags.connectTimeout), signal: controller.signal,
        onConnect: () => process.stderr.write(`gnnbatch drive: connected to ${address.kind === 'unix' ? unixSocketPath(address.name) : `${address.host}:${address.port}`} (${numbers.length} atoms)\n`),
      });
      try {
        const summary = await driver.run(address);
        process.stderr.write(`gnnbatch drive: ${summary.steps} steps; ${summary.reason === 'exit' ? 'the server said EXIT' : summary.reason === 'closed' ? 'the server closed the connection' : 'stopped by a signal'}\n`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        driver.close();
      }
    });
}
