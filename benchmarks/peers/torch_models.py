#!/usr/bin/env python3
"""PyTorch eager peer of the step benchmark (issue 27): MPEU, SchNet and PaiNN
written plainly in PyTorch (Debian's python3-torch, float32, CPU,
torch.set_num_threads(threads), subnormals flushed as gnnbatch does), trained on the very batches gnnbatch packed
(benchmarks/step.js writes them, see "Batch files" below), so both sides do the
same work. A training step is forward + masked MSE + backward + Adam
(torch.optim.Adam, lr 1e-4), timed with time.perf_counter around the whole step.

The models are gnnbatch's (native/core/models/program.h, program_painn.h,
src/model/config.ts, docs/painn.md, PAPER.md), with gnnbatch's parameter
layout and initial values (the manifest carries them), written the textbook way
(gathers with index_select, sums with index_add, one tensor op at a time):

- MPEU / SchNet: Gaussian basis rbf_k = exp(-gamma (d - spacing k)^2), K = 150;
  h = embed/w[z] + embed/b; per pass: MPEU's edge update
  e = MLP[2C -> C](concat(h[snd], h[rcv], e)) (ssp between), the filter
  f = ssp(ssp(fin W1 + b1) W2 + b2) (fin = e for MPEU, rbf for SchNet),
  message f * (h W_l + b_l)[snd], mean over incoming edges, and
  h += MLP[C, C](agg); readout ssp(h R1 + b) R2 + b, mean per graph.
  ssp(x) = softplus(x) - ln 2. C = 64, 3 passes, readout hidden 32.
- PaiNN: sinc basis sin(n pi d / rc) / d (n = 1..20) and cosine cutoff, one
  filter product (rbf W + b) fc for all blocks, scalar s [N, F] and vector
  v [N, 3, F] features, message / update blocks as in docs/painn.md, SiLU,
  sum readout. F = 128, 3 blocks, readout hidden 64. Edges outside
  0 < d < cutoff contribute exactly zero and gnnbatch skips them; so does this
  peer, which keeps only those edges when it loads a batch (what a neighbour
  list within the cutoff gives a PyTorch user), outside the timed step.

Batch files: a JSON manifest with the model configuration, the parameter
layout (name, offset, rows, cols) and the binary file's segments; the binary
file holds float32 initial parameters, gnnbatch's loss and gradient of the
first batch at those parameters (lossAndGrad), and per batch the packed arrays
(int32 atomicNumber, nodeGraph, senders, receivers, nNode; float32 distance,
target, mask, and for PaiNN direction [edges x 3]).

Usage:
  torch_models.py --serve [--threads N]     JSON lines on stdin / stdout:
      first line out: {"available": true, "torch": ..., "threads": N, "flush_denormal": bool} or
                      {"available": false, "reason": ...} (then exits 0)
      {"cmd": "load", "manifest": PATH} -> {"ok": true, "params": count,
          "params_ref": count, "loss": torch loss, "loss_ref": gnnbatch loss,
          "grad_rel_err": |g_torch - g_ref| / |g_ref|, "edges": used edges per batch}
      {"cmd": "run", "steps": k} -> {"ok": true, "ms": [k step times], "loss": last}
      {"cmd": "quit"}
  torch_models.py --check MANIFEST [--threads N] [--steps k] [--profile]
      load, compare, time k steps, print one JSON line; with --profile, then
      torch.profiler's operator table (self CPU time) of k more steps.
  (`npm run bench -- step --keep-batches DIR` leaves DIR/<model>-<B>/manifest.json.)
"""
import json
import math
import os
import sys
import time

LN2 = math.log(2.0)


def load_manifest(path):
    import numpy as np
    import torch
    with open(path) as f:
        man = json.load(f)
    blob = np.fromfile(os.path.join(os.path.dirname(path), man['data']), dtype=np.uint8)

    def arr(seg):
        dt = {'f32': np.float32, 'i32': np.int32}[seg['dtype']]
        a = np.frombuffer(blob, dtype=dt, count=seg['length'], offset=seg['offset'])
        return a.copy()

    return man, arr, np, torch


class Peer:
    """One model, its parameters and Adam state, and the batches as tensors."""

    def __init__(self, manifest_path):
        man, arr, np, torch = load_manifest(manifest_path)
        self.torch = torch
        self.cfg = man['config']
        self.kind = self.cfg['kind']
        flat = arr(man['params'])
        self.params_ref = int(man['layout_total'])
        self.params = {}
        self.order = []
        for e in man['layout']:
            t = torch.from_numpy(flat[e['offset']:e['offset'] + e['rows'] * e['cols']].reshape(e['rows'], e['cols']).copy())
            if e['rows'] == 1:
                t = t.reshape(e['cols'])  # a bias
            p = torch.nn.Parameter(t)
            self.params[e['name']] = p
            self.order.append(e)
        self.loss_ref = float(man['check']['loss'])
        self.grad_ref = torch.from_numpy(arr(man['check']['grad']))
        self.batches = [self.to_tensors(b, arr, torch) for b in man['batches']]
        self.opt = torch.optim.Adam([self.params[e['name']] for e in self.order], lr=1e-4)
        self.i = 0

    def to_tensors(self, b, arr, torch):
        a = {k: torch.from_numpy(arr(v)) for k, v in b['arrays'].items()}
        N, G = b['nodes'], b['graphs']
        snd = a['senders'].long()
        rcv = a['receivers'].long()
        cnt = torch.bincount(rcv, minlength=N).float()
        t = {
            'N': N, 'G': G,
            'z': a['atomicNumber'].long(),
            'node_graph': a['nodeGraph'].long(),
            'n_node': a['nNode'].float(),
            'target': a['target'],
            'mask': a['mask'],
            'inv': torch.where(cnt > 0, 1.0 / cnt.clamp(min=1.0), torch.zeros_like(cnt)),
        }
        d = a['distance']
        if self.kind == 'painn':
            u = a['direction'].reshape(-1, 3)
            keep = (d > 0) & (d < float(self.cfg['cutoff']))
            t.update(snd=snd[keep], rcv=rcv[keep], dist=d[keep], u=u[keep])
        else:
            t.update(snd=snd, rcv=rcv, dist=d)
        t['edges'] = int(t['snd'].numel())
        return t

    def P(self, name):
        return self.params[name]

    # ---- models ----

    def loss(self, b):
        if self.kind == 'painn':
            y = self.painn_nodes(b)
        else:
            y = self.mpnn_nodes(b)
        torch = self.torch
        s = torch.zeros(b['G']).index_add(0, b['node_graph'], y)
        if self.cfg['readout'] == 'mean':
            pred = torch.where(b['n_node'] > 0, s / b['n_node'].clamp(min=1.0), torch.zeros_like(s))
        else:
            pred = s
        m = b['mask']
        return torch.sum(m * (pred - b['target']) ** 2) / torch.clamp(torch.sum(m), min=1.0)

    def mpnn_nodes(self, b):
        torch = self.torch
        F = torch.nn.functional
        c = self.cfg
        P = self.P
        K = c['basis']
        ssp = lambda x: F.softplus(x) - LN2
        snd, rcv, N = b['snd'], b['rcv'], b['N']
        mu = torch.arange(K, dtype=torch.float32) * float(c['rbfSpacing'])
        rbf = torch.exp(-float(c['rbfGamma']) * (b['dist'][:, None] - mu[None, :]) ** 2)
        h = P('embed/w')[b['z']] + P('embed/b')
        e = rbf
        for t in range(c['passes']):
            p = 'pass%d/' % t
            fin = rbf
            if c['kind'] == 'mpeu':
                x = torch.cat([h[snd], h[rcv], e], dim=1)
                a1 = ssp(torch.addmm(P(p + 'edge/b1'), x, P(p + 'edge/w1')))
                e = torch.addmm(P(p + 'edge/b2'), a1, P(p + 'edge/w2'))
                fin = e
            f = ssp(torch.addmm(P(p + 'filter/b1'), fin, P(p + 'filter/w1')))
            f = ssp(torch.addmm(P(p + 'filter/b2'), f, P(p + 'filter/w2')))
            hs = torch.addmm(P(p + 'sender/b'), h, P(p + 'sender/w'))
            msg = f * hs[snd]
            agg = torch.zeros(N, c['latent']).index_add(0, rcv, msg)
            if c['aggregation'] == 'mean':
                agg = agg * b['inv'][:, None]
            u = ssp(torch.addmm(P(p + 'node/b1'), agg, P(p + 'node/w1')))
            h = h + torch.addmm(P(p + 'node/b2'), u, P(p + 'node/w2'))
        r = ssp(torch.addmm(P('readout/b1'), h, P('readout/w1')))
        return torch.addmm(P('readout/b2'), r, P('readout/w2'))[:, 0]

    def painn_nodes(self, b):
        torch = self.torch
        silu = torch.nn.functional.silu
        c = self.cfg
        P = self.P
        Fd, K, rc = c['latent'], c['basis'], float(c['cutoff'])
        snd, rcv, N, d, u = b['snd'], b['rcv'], b['N'], b['dist'], b['u']
        n = torch.arange(1, K + 1, dtype=torch.float32)
        rbf = torch.sin(n[None, :] * (math.pi / rc) * d[:, None]) / d[:, None]
        fc = 0.5 * (torch.cos(d * (math.pi / rc)) + 1.0)
        filt = torch.addmm(P('filter/b'), rbf, P('filter/w')) * fc[:, None]  # [E, 3F T]
        s = P('embed/w')[b['z']] + P('embed/b')
        v = torch.zeros(N, 3, Fd)
        for t in range(c['passes']):
            p = 'pass%d/' % t
            fo = 0 if c['sharedFilters'] else 3 * Fd * t
            q = torch.addmm(P(p + 'message/b2'), silu(torch.addmm(P(p + 'message/b1'), s, P(p + 'message/w1'))), P(p + 'message/w2'))
            x = q[snd] * filt[:, fo:fo + 3 * Fd]
            xs, xvv, xvs = torch.split(x, Fd, dim=1)
            ds = torch.zeros(N, Fd).index_add(0, rcv, xs)
            vm = xvs[:, None, :] * u[:, :, None]
            if t > 0:  # v = 0 before the first block
                vm = vm + xvv[:, None, :] * v[snd]
            dv = torch.zeros(N, 3, Fd).index_add(0, rcv, vm)
            if c['aggregation'] == 'mean':
                ds = ds * b['inv'][:, None]
                dv = dv * b['inv'][:, None, None]
            s = s + ds
            v = v + dv
            mix = torch.matmul(v, P(p + 'update/mix'))  # [N, 3, 2F]
            Vv, Uv = torch.split(mix, Fd, dim=2)
            nrm = torch.sqrt(torch.sum(Vv * Vv, dim=1) + 1e-8)
            a = silu(torch.addmm(P(p + 'update/b1'), torch.cat([s, nrm], dim=1), P(p + 'update/w1')))
            a = torch.addmm(P(p + 'update/b2'), a, P(p + 'update/w2'))
            avv, asv, ass = torch.split(a, Fd, dim=1)
            v = v + avv[:, None, :] * Uv
            s = s + asv * torch.sum(Uv * Vv, dim=1) + ass
        r = silu(torch.addmm(P('readout/b1'), s, P('readout/w1')))
        return torch.addmm(P('readout/b2'), r, P('readout/w2'))[:, 0]

    # ---- commands ----

    def check(self):
        """Loss and gradient of the first batch at the initial parameters against gnnbatch's."""
        torch = self.torch
        for p in self.params.values():
            p.grad = None
        loss = self.loss(self.batches[0])
        loss.backward()
        g = torch.cat([self.params[e['name']].grad.reshape(-1) for e in self.order])
        for p in self.params.values():
            p.grad = None
        err = float(torch.linalg.norm(g - self.grad_ref) / torch.clamp(torch.linalg.norm(self.grad_ref), min=1e-30))
        count = sum(int(p.numel()) for p in self.params.values())
        return {'params': count, 'params_ref': self.params_ref, 'loss': float(loss), 'loss_ref': self.loss_ref,
                'grad_rel_err': err, 'edges': [b['edges'] for b in self.batches]}

    def run(self, steps):
        ms = []
        loss = float('nan')
        for _ in range(steps):
            b = self.batches[self.i % len(self.batches)]
            self.i += 1
            t0 = time.perf_counter()
            self.opt.zero_grad(set_to_none=True)
            l = self.loss(b)
            l.backward()
            self.opt.step()
            ms.append((time.perf_counter() - t0) * 1e3)
            loss = float(l)
        return {'ms': ms, 'loss': loss}


def threads_arg(argv):
    return int(argv[argv.index('--threads') + 1]) if '--threads' in argv else 2


def start(argv):
    try:
        import numpy  # noqa: F401
        import torch
    except Exception as e:  # absent: the caller says so in its report
        return None, {'available': False, 'reason': 'torch cannot be imported by %s (%s); install python3-torch' % (sys.executable, e)}
    n = threads_arg(argv)
    torch.set_num_threads(n)
    # Subnormal floats (the Gaussian basis makes many) are flushed, as gnnbatch's
    # native threads do: without it the peer's products on the basis run on
    # subnormal operands, which measures the CPU's microcode assists rather than
    # PyTorch. GNNBATCH_TORCH_FLUSH_DENORMAL=0 leaves PyTorch's default.
    flush = os.environ.get('GNNBATCH_TORCH_FLUSH_DENORMAL', '1') != '0'
    if flush:
        flush = bool(torch.set_flush_denormal(True))
    return torch, {'available': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'python': sys.executable,
                   'flush_denormal': flush}


def serve(argv):
    torch, hello = start(argv)
    print(json.dumps(hello), flush=True)
    if torch is None:
        return 0
    peer = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            if cmd['cmd'] == 'quit':
                break
            if cmd['cmd'] == 'load':
                peer = None
                peer = Peer(cmd['manifest'])
                out = dict(ok=True, **peer.check())
            elif cmd['cmd'] == 'run':
                out = dict(ok=True, **peer.run(int(cmd['steps'])))
            else:
                out = {'ok': False, 'error': 'unknown command %r' % cmd['cmd']}
        except Exception as e:  # reported to the caller, which fails the row
            out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)
    return 0


def check(argv):
    torch, hello = start(argv)
    if torch is None:
        print(json.dumps(hello))
        return 0
    steps = int(argv[argv.index('--steps') + 1]) if '--steps' in argv else 3
    peer = Peer(argv[argv.index('--check') + 1])
    out = dict(hello, **peer.check())
    r = peer.run(steps)
    out['ms'] = r['ms']
    print(json.dumps(out))
    if '--profile' in argv:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            r = peer.run(steps)
        print('profiled step ms: %s' % ', '.join('%.1f' % x for x in r['ms']))
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=20))
    return 0


if __name__ == '__main__':
    if '--serve' in sys.argv:
        sys.exit(serve(sys.argv[1:]))
    if '--check' in sys.argv:
        sys.exit(check(sys.argv[1:]))
    print(__doc__)
    sys.exit(2)
