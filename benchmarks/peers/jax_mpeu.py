#!/usr/bin/env python3
"""Plain jit-compiled JAX MPEU / SchNet training step (the study's models), timed
on the same padded shapes as the CUDA benchmark (benchmarks/gpu/check.sh).

Model: C=64, 3 passes, 150 Gaussian RBF (mu_k = 0.1 k, gamma = 10), shifted
softplus, MPEU edge update MLP[2C -> C] on concat(h_s, h_r, e), message
MLP[C, C](e) * Linear(h)[senders], mean aggregation (jax.ops.segment_sum /
counts), node update h += MLP[C, C](agg), readout MLP [32, 1] + mean per graph,
masked MSE, Adam (optax when installed, else hand-written). Inputs are
device-resident before timing (several batches rotated): the time is the
update step only, median over steps after warm-up, each step waited with
jax.block_until_ready.

Prints one line per config:
  JAX model=MPEU data=qm9 B=128 nodes=2304 edges=39936 graphs=128 precision=default step_ms=... compile_s=... device=...
"""
import argparse
import math
import statistics
import sys
import time

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except Exception as e:  # pragma: no cover
    print(f"JAX_ERROR import failed: {e}")
    sys.exit(2)

try:
    import optax  # type: ignore
except Exception:  # pragma: no cover
    optax = None

C, PASSES, K, R, CLASSES = 64, 3, 150, 32, 100
LN2 = math.log(2.0)


def ssp(x):
    return jax.nn.softplus(x) - LN2


def init_params(kind, rng):
    def dense(i, o):
        return {"w": (rng.standard_normal((i, o)) / math.sqrt(i)).astype(np.float32),
                "b": (0.05 * rng.standard_normal((o,))).astype(np.float32)}
    p = {"embed": dense(CLASSES, C), "passes": [], "r1": dense(C, R), "r2": dense(R, 1)}
    for t in range(PASSES):
        q = {}
        if kind == "MPEU":
            ein = K if t == 0 else C
            q["e1"] = dense(2 * C + ein, 2 * C)
            q["e2"] = dense(2 * C, C)
            q["f1"] = dense(C, C)
        else:
            q["f1"] = dense(K, C)
        q["f2"] = dense(C, C)
        q["l"] = dense(C, C)
        q["u1"] = dense(C, C)
        q["u2"] = dense(C, C)
        p["passes"].append(q)
    return jax.tree_util.tree_map(jnp.asarray, p)


def make_loss(kind, N, G, precision):
    mu = jnp.arange(K, dtype=jnp.float32) * 0.1

    def lin(d, x):
        return jnp.dot(x, d["w"], precision=precision) + d["b"]

    def loss_fn(params, batch):
        z, snd, rcv, dist, node_graph, n_node, target, mask = batch
        rbf = jnp.exp(-10.0 * (dist[:, None] - mu[None, :]) ** 2)
        h = params["embed"]["w"][z] + params["embed"]["b"]
        cnt = jax.ops.segment_sum(jnp.ones_like(dist), rcv, N)
        inv = jnp.where(cnt > 0, 1.0 / jnp.maximum(cnt, 1.0), 0.0)[:, None]
        e = rbf
        for q in params["passes"]:
            if kind == "MPEU":
                x = jnp.concatenate([h[snd], h[rcv], e], axis=1)
                e = lin(q["e2"], ssp(lin(q["e1"], x)))
                fin = e
            else:
                fin = rbf
            f = ssp(lin(q["f2"], ssp(lin(q["f1"], fin))))
            m = f * lin(q["l"], h)[snd]
            agg = jax.ops.segment_sum(m, rcv, N) * inv
            h = h + lin(q["u2"], ssp(lin(q["u1"], agg)))
        y = lin(params["r2"], ssp(lin(params["r1"], h)))[:, 0]
        s = jax.ops.segment_sum(y, node_graph, G)
        pred = jnp.where(n_node > 0, s / jnp.maximum(n_node, 1).astype(jnp.float32), 0.0)
        return jnp.sum(mask * (pred - target) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)

    return loss_fn


def make_step(loss_fn, lr=1e-4):
    if optax is not None:
        opt = optax.adam(lr)

        @jax.jit
        def step(params, state, batch):
            loss, g = jax.value_and_grad(loss_fn)(params, batch)
            upd, state = opt.update(g, state, params)
            return optax.apply_updates(params, upd), state, loss

        return step, opt.init, "optax"

    def init(params):
        z = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (z, z, jnp.zeros((), jnp.int32))

    @jax.jit
    def step(params, state, batch):
        loss, g = jax.value_and_grad(loss_fn)(params, batch)
        m, v, t = state
        t = t + 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        bc1 = 1 - b1 ** t.astype(jnp.float32)
        bc2 = 1 - b2 ** t.astype(jnp.float32)
        params = jax.tree_util.tree_map(lambda p, a, b: p - lr * (a / bc1) / (jnp.sqrt(b / bc2) + eps), params, m, v)
        return params, (m, v, t), loss

    return step, init, "hand-written"


def qm9_batch(rng, N, E, G):
    """Greedy fill of random fully connected qm9-sized graphs into the budget."""
    z = np.zeros(N, np.int32); snd = np.zeros(E, np.int32); rcv = np.zeros(E, np.int32)
    dist = np.zeros(E, np.float32); node_graph = np.zeros(N, np.int32); n_node = np.zeros(G, np.int32)
    target = np.zeros(G, np.float32); mask = np.zeros(G, np.float32)
    n0 = e0 = g = 0
    while True:
        n = int(np.clip(round(rng.normal(17.9, 3.0)), 3, 29))
        ne = n * (n - 1)
        if n0 + n > N - 1 or e0 + ne > E or g + 1 > G - 1:
            break
        x = rng.standard_normal((n, 3)) * 1.5
        r_idx, s_idx = np.nonzero(~np.eye(n, dtype=bool))
        d = np.linalg.norm(x[s_idx] - x[r_idx], axis=1)
        snd[e0:e0 + ne] = s_idx + n0; rcv[e0:e0 + ne] = r_idx + n0; dist[e0:e0 + ne] = d
        z[n0:n0 + n] = rng.choice([1, 6, 7, 8, 9], size=n)
        node_graph[n0:n0 + n] = g; n_node[g] = n; target[g] = rng.standard_normal(); mask[g] = 1
        n0 += n; e0 += ne; g += 1
    # Jraph padding: graph g owns the padding nodes and edges
    snd[e0:] = n0; rcv[e0:] = n0; node_graph[n0:] = g; n_node[g] = N - n0
    node_graph[N - 1] = g
    return tuple(jnp.asarray(a) for a in (z, snd, rcv, dist, node_graph, n_node, target, mask)), g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--configs", default="MPEU:32:default,MPEU:128:default,SchNet:32:default,SchNet:128:default,MPEU:128:highest")
    args = ap.parse_args()
    dev = jax.devices()[0]
    budgets = {32: (576, 9984, 32), 128: (2304, 39936, 128)}
    print(f"# jax {jax.__version__} on {dev.platform}:{dev.device_kind}; adam via {'optax' if optax else 'hand-written'}", flush=True)
    for cfg in args.configs.split(","):
        kind, B, prec = cfg.split(":")
        B = int(B)
        N, E, G = budgets[B]
        rng = np.random.default_rng(42)
        batches = [qm9_batch(rng, N, E, G) for _ in range(8)]
        real = statistics.mean(b[1] for b in batches)
        batches = [b[0] for b in batches]
        precision = None if prec == "default" else jax.lax.Precision.HIGHEST
        params = init_params(kind, np.random.default_rng(3))
        step, init, _ = make_step(make_loss(kind, N, G, precision))
        state = init(params)
        t0 = time.perf_counter()
        params, state, loss = step(params, state, batches[0])
        jax.block_until_ready(loss)
        compile_s = time.perf_counter() - t0
        for i in range(args.warmup):
            params, state, loss = step(params, state, batches[i % len(batches)])
        jax.block_until_ready((params, loss))
        times = []
        for i in range(args.steps):
            b = batches[i % len(batches)]
            t0 = time.perf_counter()
            params, state, loss = step(params, state, b)
            jax.block_until_ready((params, loss))
            times.append((time.perf_counter() - t0) * 1e3)
        if not np.isfinite(float(loss)):
            print(f"JAX_ERROR non-finite loss for {cfg}")
        print(f"JAX model={kind} data=qm9 B={B} nodes={N} edges={E} graphs={G} real_graphs={real:.1f} "
              f"precision={prec} step_ms={statistics.median(times):.4f} compile_s={compile_s:.2f} "
              f"device={dev.device_kind.replace(' ', '_')}", flush=True)


if __name__ == "__main__":
    main()
