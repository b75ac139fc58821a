"""ASE as the i-PI server for the driver tests: SocketIOCalculator over a Unix socket.

usage: ase_client.py SOCKET_NAME MODE, MODE one of
  points  energies, forces and stress of a few fixed geometries (JSON on stdout)
  md      200 steps of velocity Verlet NVE (0.25 fs) of a small molecule: total energies
  bfgs    a BFGS relaxation: converged?, steps, final fmax
  stress  the stress of a periodic cell against central finite strain differences of the energy
Every mode prints one JSON document. Units are ASE's: eV, Å, eV/Å^3.
"""
import json
import sys

import numpy as np
from ase import Atoms, units
from ase.calculators.socketio import SocketIOCalculator
from ase.md.verlet import VelocityVerlet
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS

name, mode = sys.argv[1], sys.argv[2]
molecule = Atoms('OH2', positions=[[0, 0, 0], [0.97, 0.05, 0.0], [-0.25, 0.94, 0.1]])


def crystal():
    cell = [[3.1, 0.0, 0.0], [0.4, 2.9, 0.0], [0.3, 0.2, 3.3]]
    return Atoms('H4', scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.1], [0.45, 0.05, 0.5], [0.1, 0.5, 0.55]], cell=cell, pbc=True)


out = {}
with SocketIOCalculator(unixsocket=name) as calc:
    if mode == 'points':
        atoms = crystal() if len(sys.argv) > 3 and sys.argv[3] == 'periodic' else molecule.copy()
        atoms.calc = calc
        rng = np.random.default_rng(7)
        start = atoms.positions.copy()
        out['points'] = []
        for k in range(3):
            atoms.positions = start + 0.05 * rng.standard_normal(start.shape)
            p = {'positions': atoms.positions.tolist(), 'cell': atoms.cell.array.tolist(),
                 'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces().tolist()}
            if atoms.pbc.any():
                p['stress'] = atoms.get_stress().tolist()
            out['points'].append(p)
    elif mode == 'md':
        atoms = molecule.copy()
        atoms.calc = calc
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
        dyn = VelocityVerlet(atoms, timestep=0.25 * units.fs)
        total = []
        dyn.attach(lambda: total.append(atoms.get_total_energy()), interval=1)
        dyn.run(200)
        out['total'] = total
        out['kinetic_start'] = float(atoms.get_kinetic_energy())
    elif mode == 'bfgs':
        atoms = molecule.copy()
        atoms.positions += np.array([[0, 0, 0], [0.15, -0.05, 0.02], [-0.1, 0.1, 0.05]])
        atoms.calc = calc
        opt = BFGS(atoms, logfile=None)
        converged = opt.run(fmax=0.01, steps=300)
        out = {'converged': bool(converged), 'steps': opt.nsteps, 'fmax': float(np.abs(atoms.get_forces()).max()),
               'energy': atoms.get_potential_energy()}
    elif mode == 'stress':
        atoms = crystal()
        atoms.calc = calc
        out['stress'] = atoms.get_stress().tolist()
        cell0 = atoms.cell.array.copy()
        pos0 = atoms.positions.copy()
        h = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
        volume = atoms.get_volume()
        fd = np.zeros((3, 3))
        for i in range(3):
            for j in range(3):
                e = []
                for s in (h, -h):
                    eps = np.eye(3)
                    eps[i, j] += s
                    atoms.set_cell(cell0 @ eps, scale_atoms=False)
                    atoms.positions = pos0 @ eps
                    e.append(atoms.get_potential_energy())
                fd[i, j] = (e[0] - e[1]) / (2 * h) / volume
        atoms.set_cell(cell0, scale_atoms=False)
        atoms.positions = pos0
        fd = 0.5 * (fd + fd.T)
        out['finite_difference'] = [fd[0, 0], fd[1, 1], fd[2, 2], fd[1, 2], fd[0, 2], fd[0, 1]]
print(json.dumps(out))
