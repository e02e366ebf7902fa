#!/usr/bin/env python3
"""PyTorch twin of pfmpi's joint model for the Nf = 2 Schwinger model.

The same architecture, written from the same equations (arXiv:2207.08945
and pfmpi's package documentation), trained the same way: a gauge-equivariant
U(1) flow (NCP coupling layers on plaquettes, the Schwinger masks, context
networks of periodic convolutions) and, per pseudofermion monomial, a
conditional flow of parallel-transport convolutions (PTC) with a shared
context trunk; the loss is the joint reverse KL of Eq. B1 with the
pseudofermion actions of the even/odd (or unpreconditioned) Hasenbusch
monomials, each solved by CG, and its gradient flows through φ and U (the
force from the solve, as pfmpi's package action computes it).

It is a timing twin: it prints its parameter count (which must equal the one
pfmpi prints for the same run file: --expect-params) and the time per
training step, and it checks itself (heat-bath identity S(φ) = η†η of every
monomial, the force against a finite difference). It is not part of pfmpi's
tests or CI: bench/torch/compare.sh runs it beside `pfmpi bench -train`.

    python3 twin.py --lattice 8 --batch 64 --gauge-layers 8 --pf-layers 8 \\
        --precondition eo --hasenbusch 0.001,0.01,0.05 --steps 5 --threads 1
"""

import argparse
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- lattice


def coords(L):
    x0 = torch.arange(L).view(L, 1).expand(L, L)
    x1 = torch.arange(L).view(1, L).expand(L, L)
    return x0, x1


def shift(f, mu, step, anti=False):
    """f(x + step·μ̂) for f of shape [..., L0, L1] (μ = 0: time, dim -2).

    anti: the fermions' antiperiodic boundary in time — values that cross the
    time boundary change sign."""
    dim = -2 if mu == 0 else -1
    g = torch.roll(f, shifts=-step, dims=dim)
    if anti and mu == 0:
        L = f.shape[-2]
        sign = torch.ones(L, 1, dtype=torch.float64)
        if step > 0:
            sign[L - step:] = -1  # x0 + step crossed L
        else:
            sign[: -step] = -1  # x0 + step < 0
        g = g * sign.to(g.dtype)
    return g


def conv(cin, cout, k, dil, dtype):
    return nn.Conv2d(cin, cout, k, padding=dil * (k - 1) // 2, dilation=dil,
                     padding_mode="circular", dtype=dtype)


# ---------------------------------------------------------------- U(1) gauge flow


class NCP:
    """Mixture of m non-compact projections and a rotation (pfmpi's coupling.NCP)."""

    def __init__(self, m):
        self.m = m

    def params(self):
        return self.m + 1

    def forward(self, p, x):
        s, t = p[..., : self.m], p[..., self.m]
        c, sn = torch.cos(x / 2).unsqueeze(-1), torch.sin(x / 2).unsqueeze(-1)
        es = torch.exp(s)
        y = 2 * torch.atan2(es * sn, c)
        y = torch.where(y < 0, y + 2 * math.pi, y)
        q = c * c / es + es * sn * sn
        h = y.mean(-1) + t
        logd = torch.log((1 / q).mean(-1))
        return torch.remainder(h, 2 * math.pi), logd


class GaugeLayer(nn.Module):
    """U(1) coupling layer i with the Schwinger-model masks (pfmpi coupling.U1Layer)."""

    # loops as (offset, direction, sign): P_01, rectangles along 0 and along 1
    OFF = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2)]
    LOOPS = [
        [(0, 0, 1), (1, 1, 1), (2, 0, -1), (0, 1, -1)],
        [(0, 0, 1), (1, 0, 1), (4, 1, 1), (3, 0, -1), (2, 0, -1), (0, 1, -1)],
        [(0, 1, 1), (2, 1, 1), (5, 0, 1), (3, 1, -1), (1, 1, -1), (0, 0, -1)],
    ]

    def __init__(self, i, L, hidden, kernel, dilations, cmap, gain, dtype):
        super().__init__()
        self.mu, self.off = (i // 4) % 2, i % 4
        self.sign = 1.0 if self.mu == 0 else -1.0
        self.cmap = cmap
        self.dtype = dtype
        x0, x1 = coords(L)
        x = [x0, x1]

        def active(d, y):
            nu = 1 - self.mu
            return (d == self.mu) & ((((y[self.mu] - self.off - 2 * (y[nu] % 2)) % 4) + 4) % 4 == 0)

        self.register_buffer("active", active(self.mu, x).to(torch.float64))
        frozen = []
        for loop in self.LOOPS:
            free = torch.ones(L, L, dtype=torch.bool)
            for (nb, d, _) in loop:
                o = self.OFF[nb]
                y = [(x[0] + o[0]) % L, (x[1] + o[1]) % L]
                free &= ~active(d, y)
            frozen.append(free.to(torch.float64))
        self.register_buffer("frozen", torch.stack(frozen))  # [3, L, L]
        ch = [6] + list(hidden) + [cmap.params()]
        layers = []
        for j in range(len(ch) - 1):
            d = dilations[j % len(dilations)] if dilations else 1
            c = conv(ch[j], ch[j + 1], kernel, d, dtype)
            if j + 2 == len(ch):
                nn.init.zeros_(c.weight)
            else:
                nn.init.xavier_normal_(c.weight, gain=gain)
            nn.init.zeros_(c.bias)
            layers.append(c)
            if j + 2 < len(ch):
                layers.append(nn.LeakyReLU(0.01))
        self.net = nn.Sequential(*layers)

    def loop_angle(self, k, theta):
        a = 0
        for (nb, d, sg) in self.LOOPS[k]:
            o = self.OFF[nb]
            t = theta[:, d]
            t = torch.roll(t, shifts=(-o[0], -o[1]), dims=(-2, -1))
            a = a + sg * t
        return a

    def forward(self, theta):
        feats = []
        for k in range(3):
            a = self.loop_angle(k, theta)
            feats += [torch.cos(a) * self.frozen[k], torch.sin(a) * self.frozen[k]]
        par = self.net(torch.stack(feats, 1).to(self.dtype)).to(torch.float64)  # [B, P, L, L]
        x = torch.remainder(self.loop_angle(0, theta), 2 * math.pi)
        y, logd = self.cmap.forward(par.permute(0, 2, 3, 1), x)
        delta = (y - x) * self.active
        new = theta.clone()
        new[:, self.mu] = theta[:, self.mu] + self.sign * delta
        return new, (logd * self.active).sum((-2, -1))


class GaugeFlow(nn.Module):
    def __init__(self, L, layers, hidden, kernel, dilations, mixtures, gain, dtype):
        super().__init__()
        cmap = NCP(mixtures)
        self.layers = nn.ModuleList(
            GaugeLayer(i, L, hidden, kernel, dilations, cmap, gain, dtype) for i in range(layers))
        self.L = L

    def forward(self, z):
        logj = torch.zeros(z.shape[0], dtype=torch.float64)
        for l in self.layers:
            z, lj = l(z)
            logj = logj + lj
        logq = -2 * self.L * self.L * math.log(2 * math.pi) - logj
        return z, logq


# ---------------------------------------------------------------- pseudofermion flows


class PTC:
    """Parallel-transport convolution (Eqs. 25–26): L = (φ, U_0φ(+0), U_0†φ(−0), U_1φ(+1), U_1†φ(−1))."""

    @staticmethod
    def gather(U, phi):
        # U [B, 2, L, L] complex, phi [B, K, L, L] complex
        feats = [phi]
        for mu in range(2):
            u = U[:, mu].unsqueeze(1)
            feats.append(u * shift(phi, mu, 1, anti=True))
            feats.append(shift(torch.conj(u) * phi, mu, -1, anti=True))
        return torch.cat(feats, 1)

    @staticmethod
    def apply(U, phi, m, out):
        Lg = PTC.gather(U, phi)  # [B, Kt, L, L]
        kt = Lg.shape[1]
        M = torch.complex(m[:, 0::2], m[:, 1::2]).view(m.shape[0], out, kt, *m.shape[-2:])
        return torch.einsum("bagxy,bgxy->baxy", M, Lg)


class PFLayer(nn.Module):
    """φ′_a = A φ_a + PTCN[U, φ_f], φ′_f = φ_f (pfmpi pfflow.Layer), rows or checkerboard."""

    def __init__(self, part, alt, L, eo, npt, hidden, ctx_hidden, kernel, gain, dtype):
        super().__init__()
        x0, x1 = coords(L)
        even = ((x0 + x1) % 2 == 0)
        if part == "rows":
            act = ((even | (not eo)) & (x0 % 2 == alt))
        else:  # checkerboard
            act = even == (alt == 0)
        self.register_buffer("active", act.to(torch.float64))
        self.ns = 2
        self.outs = []
        cin = self.ns
        for j in range(npt):
            cout = hidden if j < npt - 1 else self.ns
            self.outs.append((cin, cout))
            cin = cout
        self.apar = 2 * self.ns * self.ns
        nout = self.apar + sum(2 * co * 5 * ci for (ci, co) in self.outs)
        self.head = conv(ctx_hidden, nout, kernel, 1, dtype)
        nn.init.xavier_normal_(self.head.weight, gain=gain)
        nn.init.zeros_(self.head.bias)
        self.dtype = dtype

    def forward(self, U, ctx, phi):
        par = torch.tanh(self.head(ctx)).to(torch.float64)
        act = self.active
        h = phi * (1 - act)
        off = self.apar
        for (ci, co) in self.outs:
            n = 2 * co * 5 * ci
            h = PTC.apply(U, h, par[:, off:off + n], co)
            off += n
        a = torch.complex(par[:, 0:self.apar:2], par[:, 1:self.apar:2])  # [B, 4, L, L]
        A = a.view(a.shape[0], 2, 2, *a.shape[-2:]) + torch.eye(2, dtype=torch.complex128).view(1, 2, 2, 1, 1)
        new = torch.einsum("bijxy,bjxy->bixy", A, phi) + h
        out = phi * (1 - act) + new * act
        det = A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0]
        logj = (2 * torch.log(torch.abs(det)) * act).sum((-2, -1))
        return out, logj


class PFModel(nn.Module):
    def __init__(self, L, eo, monomials, layers, parts, npt, hidden, ctx_hidden, kernel, gain, dtype):
        super().__init__()
        x0, x1 = coords(L)
        self.register_buffer("xmod", torch.stack([(x0 % 4), (x1 % 4)]).to(torch.float64))
        self.register_buffer("even", ((x0 + x1) % 2 == 0).to(torch.float64))
        self.trunk = conv(4, ctx_hidden, kernel, 1, dtype)
        nn.init.xavier_normal_(self.trunk.weight, gain=gain)
        nn.init.zeros_(self.trunk.bias)
        self.flows = nn.ModuleList()
        for i in range(monomials):
            count = {}
            ls = nn.ModuleList()
            for j in range(layers):
                p = parts[j % len(parts)]
                ls.append(PFLayer(p, count.get(p, 0) % 2, L, eo, npt, hidden, ctx_hidden, kernel, gain, dtype))
                count[p] = count.get(p, 0) + 1
            self.flows.append(ls)
        self.eo, self.L, self.dtype = eo, L, dtype
        self.dof = L * L * 2 // (2 if eo else 1)

    def context(self, theta):
        tp = theta[:, 0] + shift(theta[:, 1], 0, 1) - shift(theta[:, 0], 1, 1) - theta[:, 1]
        b = theta.shape[0]
        f = torch.cat([torch.cos(tp).unsqueeze(1), torch.sin(tp).unsqueeze(1),
                       self.xmod.unsqueeze(0).expand(b, 2, self.L, self.L)], 1)
        return F.elu(self.trunk(f.to(self.dtype)))

    def sample(self, i, U, ctx, chi):
        phi = chi
        logj = torch.zeros(chi.shape[0], dtype=torch.float64)
        for l in self.flows[i]:
            phi, lj = l(U, ctx, phi)
            logj = logj + lj
        logq = -(chi.abs() ** 2).sum((1, 2, 3)) - self.dof * math.log(math.pi) - logj
        return phi, logq


# ---------------------------------------------------------------- Wilson fermions


class Wilson:
    """D = 1 − κH, H = Σ_μ (1 − γ_μ) U_μ(x) ψ(x+μ̂) + (1 + γ_μ) U_μ(x−μ̂)† ψ(x−μ̂), γ_0 = σ_x, γ_1 = σ_y."""

    G = [torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
         torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128)]
    I2 = torch.eye(2, dtype=torch.complex128)

    def __init__(self, kappa, eo, L):
        self.kappa, self.eo = kappa, eo
        x0, x1 = coords(L)
        self.even = ((x0 + x1) % 2 == 0).to(torch.complex128)

    def hop(self, U, psi, dag=False):
        out = 0
        for mu in range(2):
            g = self.G[mu]
            fw, bw = self.I2 - g, self.I2 + g
            if dag:
                fw, bw = bw, fw
            u = U[:, mu].unsqueeze(1)
            f = u * shift(psi, mu, 1, anti=True)
            b = shift(torch.conj(u) * psi, mu, -1, anti=True)
            out = out + torch.einsum("ij,bjxy->bixy", fw, f) + torch.einsum("ij,bjxy->bixy", bw, b)
        return out

    def A(self, U, psi, dag=False):
        """D (or D_sc on the even sites: ψ − κ² H_eo H_oe ψ)."""
        if not self.eo:
            return psi - self.kappa * self.hop(U, psi, dag)
        t = self.hop(U, psi, dag) * (1 - self.even)
        return psi - self.kappa ** 2 * self.hop(U, t, dag) * self.even

    def normal(self, U, psi, sigma):
        return self.A(U, self.A(U, psi, dag=True)) + sigma * psi

    def gamma5(self, psi):
        return psi * torch.tensor([1, -1], dtype=torch.complex128).view(1, 2, 1, 1)


def cg(apply, b, tol, maxiter=100000):
    """Solves apply(x) = b for every member of the batch (Hermitian positive)."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = (r.conj() * r).real.sum((1, 2, 3))
    bb = rr.clone()
    for it in range(maxiter):
        if bool((rr <= tol * tol * bb).all()):
            return x, it
        ap = apply(p)
        alpha = rr / (p.conj() * ap).real.sum((1, 2, 3))
        x = x + alpha.view(-1, 1, 1, 1) * p
        r = r - alpha.view(-1, 1, 1, 1) * ap
        rr2 = (r.conj() * r).real.sum((1, 2, 3))
        p = r + (rr2 / rr).view(-1, 1, 1, 1) * p
        rr = rr2
    raise RuntimeError("CG did not converge")


class Monomial:
    """S = c0 φ†φ + c1 φ†(M + σ)⁻¹φ, M = AA† (pfmpi action.Pseudofermion)."""

    def __init__(self, wilson, c0, c1, sigma, tol):
        self.w, self.c0, self.c1, self.sigma, self.tol = wilson, c0, c1, sigma, tol
        self.iterations = 0

    def action(self, U, phi):
        """S(U, φ) with the gradients of pfmpi: 2Kφ for φ and the CG force for U."""
        Ud = U.detach()
        with torch.no_grad():
            X, it = cg(lambda v: self.w.normal(Ud, v, self.sigma), phi.detach(), self.tol)
            self.iterations += it
            Y = self.w.A(Ud, X, dag=True)
            kphi = self.c0 * phi.detach() + self.c1 * X
            S = (self.c0 * (phi.detach().abs() ** 2).sum((1, 2, 3))
                 + self.c1 * (phi.detach().conj() * X).real.sum((1, 2, 3)))
        # dS = 2 Re⟨Kφ, dφ⟩ − 2c1 Re⟨X, dA Y⟩: surrogates with those gradients.
        sphi = 2 * (kphi.conj() * phi).real.sum((1, 2, 3))
        su = -2 * self.c1 * (X.conj() * self.w.A(U, Y)).real.sum((1, 2, 3))
        return S + (sphi - sphi.detach()) + (su - su.detach())


def monomials(wilson, shifts, regulator, tol):
    mus = [regulator + m for m in [0.0] + shifts]
    out = []
    for i in range(len(mus) - 1):
        out.append(Monomial(wilson, 1.0, mus[i + 1] - mus[i], mus[i], tol))
    out.append(Monomial(wilson, 0.0, 1.0, mus[-1], tol))
    return out


def plaquette_action(theta, beta):
    tp = theta[:, 0] + shift(theta[:, 1], 0, 1) - shift(theta[:, 0], 1, 1) - theta[:, 1]
    return -beta * torch.cos(tp).sum((-2, -1))


# ---------------------------------------------------------------- training


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lattice", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--kappa", type=float, default=0.265)
    ap.add_argument("--precondition", choices=["eo", "none"], default="eo")
    ap.add_argument("--hasenbusch", default="0.001,0.01,0.05")
    ap.add_argument("--regulator", type=float, default=1e-5)
    ap.add_argument("--gauge-layers", type=int, default=8)
    ap.add_argument("--gauge-hidden", default="32,32")
    ap.add_argument("--gauge-kernel", type=int, default=3)
    ap.add_argument("--gauge-dilations", default="1,2,3")
    ap.add_argument("--ncp-mixtures", type=int, default=6)
    ap.add_argument("--pf-layers", type=int, default=8)
    ap.add_argument("--pf-partition", default="rows")
    ap.add_argument("--n-pt", type=int, default=6)
    ap.add_argument("--pt-hidden", type=int, default=2)
    ap.add_argument("--pf-context-hidden", type=int, default=16)
    ap.add_argument("--init-gain", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--eps", type=float, default=0.02)
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--precision", choices=["float64", "float32"], default="float64")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect-params", type=int, default=0,
                    help="fail unless the model has this many parameters (the number pfmpi prints)")
    ap.add_argument("--check", action="store_true", help="run the self-checks first")
    return ap.parse_args()


def ints(s):
    return [int(v) for v in s.split(",") if v]


def floats(s):
    return [float(v) for v in s.split(",") if v]


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dtype = torch.float32 if a.precision == "float32" else torch.float64
    eo = a.precondition == "eo"
    shifts = floats(a.hasenbusch)
    L = a.lattice
    gauge = GaugeFlow(L, a.gauge_layers, ints(a.gauge_hidden), a.gauge_kernel, ints(a.gauge_dilations),
                      a.ncp_mixtures, a.init_gain, dtype)
    pf = PFModel(L, eo, len(shifts) + 1, a.pf_layers, a.pf_partition.split(","), a.n_pt, a.pt_hidden,
                 a.pf_context_hidden, 3, a.init_gain, dtype)
    params = list(gauge.parameters()) + list(pf.parameters())
    count = sum(p.numel() for p in params)
    print(f"twin: {count} parameters, {a.precision} networks, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    if a.expect_params and count != a.expect_params:
        print(f"twin: {count} parameters, pfmpi has {a.expect_params}: the models differ", file=sys.stderr)
        sys.exit(1)
    wilson = Wilson(a.kappa, eo, L)
    train = monomials(wilson, shifts, a.regulator, a.tol)
    if a.check:
        self_check(wilson, train, L, a.batch)
    opt = torch.optim.AdamW(params, lr=a.lr, eps=a.eps, weight_decay=0.01)
    even = pf.even if eo else torch.ones(L, L, dtype=torch.float64)
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        z = 2 * math.pi * torch.rand(a.batch, 2, L, L, dtype=torch.float64)
        theta, logq = gauge(z)
        U = torch.polar(torch.ones_like(theta), theta)
        ctx = pf.context(theta)
        loss = logq + plaquette_action(theta, a.beta)
        for i, m in enumerate(train):
            chi = torch.complex(torch.randn(a.batch, 2, L, L, dtype=torch.float64),
                                torch.randn(a.batch, 2, L, L, dtype=torch.float64)) * math.sqrt(0.5) * even
            phi, lq = pf.sample(i, U, ctx, chi)
            loss = loss + lq + m.action(U, phi)
        loss = loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        print(f"step {step + 1}: loss {loss.item():.2f}, {dt:.3f} s", flush=True)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"twin: median {times[len(times) // 2]:.3f} s/step over {len(times)} steps, "
          f"peak RSS {rss:.0f} MiB")


def self_check(wilson, mons, L, batch):
    """Heat bath S(φ) = η†η for each monomial; the U force against a finite difference."""
    torch.manual_seed(7)
    b = min(batch, 4)
    theta = 2 * math.pi * torch.rand(b, 2, L, L, dtype=torch.float64)
    U = torch.polar(torch.ones_like(theta), theta)
    even = wilson.even if wilson.eo else 1
    for m in mons:
        eta = torch.complex(torch.randn(b, 2, L, L, dtype=torch.float64),
                            torch.randn(b, 2, L, L, dtype=torch.float64)) * math.sqrt(0.5) * even

        def shifted(v, mu, dag):
            out = wilson.A(U, v, dag=dag)
            if mu:
                c = 1j * math.sqrt(mu) * (-1 if dag else 1)
                out = out + c * wilson.gamma5(v) * even
            return out

        if m.c0 == 0:
            phi = shifted(eta, m.sigma, False)
        else:
            hi = m.sigma + m.c1
            t, _ = cg(lambda v: wilson.normal(U, v, hi), eta, 1e-13)
            phi = shifted(shifted(t, hi, True), m.sigma, False)
        S = m.action(U, phi).detach()
        want = (eta.abs() ** 2).sum((1, 2, 3))
        if not torch.allclose(S, want, rtol=1e-8):
            raise SystemExit(f"self-check: heat bath S = {S.tolist()}, η†η = {want.tolist()}")
    # Force: d/dε S(θ + ε dir) against the gradient.
    m = mons[-1]
    phi = torch.complex(torch.randn(b, 2, L, L, dtype=torch.float64), torch.randn(b, 2, L, L, dtype=torch.float64)) * even
    th = theta.clone().requires_grad_(True)
    S = m.action(torch.polar(torch.ones_like(th), th), phi).sum()
    S.backward()
    d = torch.randn_like(theta)
    eps = 1e-5
    with torch.no_grad():
        sp = m.action(torch.polar(torch.ones_like(theta), theta + eps * d), phi).sum()
        sm = m.action(torch.polar(torch.ones_like(theta), theta - eps * d), phi).sum()
    fd, an = ((sp - sm) / (2 * eps)).item(), (th.grad * d).sum().item()
    if abs(fd - an) > 1e-5 * (1 + abs(an)):
        raise SystemExit(f"self-check: force {an}, finite difference {fd}")
    print(f"twin: self-checks passed (heat bath of {len(mons)} monomials, force {an:.6g} = FD {fd:.6g})", flush=True)


if __name__ == "__main__":
    main()
