"""The held-book policy: each close, optimize the book actually held (`ml.portfolio.optimizer`) with
constants measured walk-forward from the data (`ml.portfolio.measured`), under constraints that hold on
that book every day (`ml.portfolio.constraints`).

    policy = HeldBookPolicy(costs=HalfSpread() + Commission(1.0) + SquareRootImpact(1.0),
                            constraints=[SectorNeutral(), BetaNeutral(), MaxWeight(0.03), AdvCap(0.05),
                                         GrossLeverage(2.0), VolTarget(0.08), TurnoverLimit(0.1, 1.2)])
    result = policy.run(signals, market)   # PolicyResult: weights, trades, costs, reasons; .constants

Per date t (a loop over dates, each a small conic program over the names held or signalled):
1. drift yesterday's weights with today's returns; names that stopped trading are closed;
2. alpha_i = edge_t x shrunk expected return_i, where edge_t (realized return per bp, over the measured
   horizon h*_t) is known at t; abstained names carry no alpha, held ones still cost risk and borrow;
3. maximize alpha - risk - costs over post-trade weights; limits hold on the result;
4. costs are charged on the NAV actually managed (capital compounded by the net P&L so far).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.backtest import MarketPanel
from ml.costs import CostInputs, CostModel, HalfSpread
from ml.horizon_signals import horizon_alphas
from ml.portfolio.constraints import (
    AdvCap,
    Constraint,
    Day,
    GrossLeverage,
    MaxWeight,
    VolTarget,
)
from ml.portfolio.measured import abdi_ranaldo_spread, measure_scaled_edge
from ml.portfolio.optimizer import Borrow, fill_sigma, optimize

# spread sources, per name and date
SPREAD_QUOTED, SPREAD_ESTIMATED, SPREAD_FALLBACK = 0, 1, 2


def measured_spread(market: MarketPanel, fallback_bps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full spread in bps per name and date: quoted where the data has it, else Abdi-Ranaldo from the
    panel's closes, highs and lows where that estimate is reliable, else `fallback_bps` (reported as such).
    Also the source code array and the estimator's daily split-half reliability."""
    quoted = np.asarray(market.spread_bps, dtype=float)
    ok_q = np.isfinite(quoted) & (quoted > 0)
    est, reliability = (abdi_ranaldo_spread(market.close, market.high, market.low)
                        if market.high is not None and market.low is not None
                        else (np.full(market.shape, np.nan), np.full(len(market.dates), np.nan)))
    ok_e = np.isfinite(est) & (est > 0)
    spread = np.where(ok_q, quoted, np.where(ok_e, est, fallback_bps))
    source = np.where(ok_q, SPREAD_QUOTED, np.where(ok_e, SPREAD_ESTIMATED, SPREAD_FALLBACK)).astype(np.int8)
    return spread, source, reliability


@dataclass
class RealizedRisk:
    """The vol target on realized risk: realized volatility of the book's daily gross returns over the
    last `window` days against the ex-ante volatility the optimizer saw for those books (the ratio
    scales the target; clipped to [lo, hi]; 1 until `min_days` are known)."""

    window: int = 63
    min_days: int = 21
    lo: float = 0.5
    hi: float = 2.0

    def scale(self, realized: np.ndarray, ex_ante: np.ndarray, t: int) -> float:
        a = max(0, t - self.window)
        r, v = realized[a:t], ex_ante[a:t]
        ok = np.isfinite(r) & np.isfinite(v) & (v > 0)
        if ok.sum() < self.min_days:
            return 1.0
        ratio = float(np.std(r[ok], ddof=1) / np.sqrt(np.mean(v[ok] ** 2)))
        return float(np.clip(ratio, self.lo, self.hi)) if np.isfinite(ratio) else 1.0


@dataclass
class HeldBookPolicy:
    """Optimize the held book each day. `full_risk_ir`: the ex-ante information ratio (annual) at which the
    book takes its whole volatility budget; it sets the risk aversion gamma = full_risk_ir / target vol,
    so a weaker measured edge takes proportionally less risk and a null edge none.

    Risk (and borrow) are charged over max(h*, `min_risk_horizon_days`): a position the optimizer keeps
    is kept at least that long, so a stale position's risk is counted over the time it would really be
    held, not over the few days its alpha lasted; without it the no-trade band (cost / (gamma h sigma^2))
    of a short-lived signal would keep positions whose alpha is gone."""

    costs: CostModel
    constraints: list[Constraint] = field(default_factory=list)
    borrow: Borrow | None = field(default_factory=Borrow)
    full_risk_ir: float = 2.0
    edge_lags: tuple[int, ...] = (1, 2, 3, 5, 10, 21)
    min_edge_dates: int = 63
    min_risk_horizon_days: float = 21.0
    vol_scaling: tuple[float, ...] = (0.0, 1.0)  # candidate exponents p of (sigma / median)^p, measured
    realized_risk: RealizedRisk | None = field(default_factory=RealizedRisk)
    capital: float = 5e7
    horizon: int = 5
    abstention: object | None = None  # ml.policy.Abstention

    def gamma(self) -> float:
        vol = next((c.annual for c in self.constraints if isinstance(c, VolTarget)), 0.10)
        return float(self.full_risk_ir) / float(vol)

    def run(self, signals, market: MarketPanel, start: int | None = None):
        from ml import policy as pol

        start = signals.first_date() if start is None else start
        T, N = market.shape
        er = signals.expected_return
        reason0 = (self.abstention.reasons(signals) if self.abstention is not None
                   else np.where(np.isfinite(er), pol.NONE, pol.AB_NOSIGNAL).astype(np.int8))
        edge, vol_exponent, multiplier = measure_scaled_edge(
            er, market.returns, market.sigma, exponents=self.vol_scaling, lags=self.edge_lags,
            min_dates=self.min_edge_dates)
        er_adj = pol.RiskBudget().adjusted(signals)
        er_adj = np.where(reason0 == pol.NONE, er_adj, 0.0)
        alpha_all = er_adj * multiplier * edge.edge[:, None]  # return over h*_t per unit weight
        life, horizon_edges = np.zeros(T), {}
        if signals.components:  # other label horizons, each at its own measured speed (ml/horizon_signals.py)
            extra, life, horizon_edges = horizon_alphas(er, signals.components, market.returns, market.sigma,
                                                        exponents=self.vol_scaling, lags=self.edge_lags,
                                                        min_dates=self.min_edge_dates)
            alpha_all = alpha_all + np.where(reason0 == pol.NONE, extra, 0.0)
        fallback = next((c.fallback_bps for c in self.costs.components if isinstance(c, HalfSpread)), 10.0)
        spread, spread_src, spread_rel = measured_spread(market, fallback)
        sigma_all = fill_sigma(market.sigma)
        beta_all = np.nan_to_num(market.beta, nan=1.0)
        gamma = self.gamma()
        vt = next((c for c in self.constraints if isinstance(c, VolTarget)), None)

        weights, trades, cost = np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N))
        reasons = np.zeros((T, N), np.int8)
        aim = np.zeros((T, N))
        ex_ante, realized = np.full(T, np.nan), np.full(T, np.nan)
        scale_used, status, navs = np.ones(T), np.array([""] * T, dtype=object), np.ones(T)
        r_all = np.nan_to_num(market.returns)
        w = np.zeros(N)
        nav = 1.0
        for t in range(start, T):
            r = r_all[t]
            day_ret = float((w * r).sum())
            realized[t] = day_ret
            nav *= 1.0 + day_ret - (cost[t - 1].sum() if t > 0 else 0.0)
            navs[t] = nav
            w_pre = w * (1.0 + r) / (1.0 + day_ret)
            tradable = market.tradable[t]
            forced = (w_pre != 0) & ~tradable
            alpha = alpha_all[t]
            use = tradable & ((alpha != 0) | (w_pre != 0))
            idx = np.flatnonzero(use)
            if vt is not None and self.realized_risk is not None:
                vt.scale = self.realized_risk.scale(realized, ex_ante, t)
                scale_used[t] = vt.scale
            h = float(max(edge.horizon[t], life[t], self.min_risk_horizon_days, 1))
            day = Day(w0=w_pre[idx], alpha=alpha[idx], sigma=sigma_all[t, idx], beta=beta_all[t, idx],
                      sector=market.sector[idx], n_sectors=len(market.sectors), adv_value=market.adv_value[t, idx],
                      spread_bps=spread[t, idx], horizon=h, nav=self.capital * nav,
                      book=float(np.abs(w_pre).sum()))
            sol = optimize(day, gamma, self.costs, self.constraints, self.borrow)
            status[t] = sol.status
            w_new = np.zeros(N)
            w_new[idx] = sol.w
            executed = w_new - w_pre
            executed = np.where(np.abs(executed) < 1e-12, 0.0, executed)
            w = w_pre + executed
            weights[t], trades[t] = w, executed
            inputs = CostInputs(spread_bps=spread[t], adv_value=market.adv_value[t], sigma=sigma_all[t])
            cost[t] = self.costs.cost(executed, inputs, self.capital * nav)
            if self.borrow is not None:
                cost[t] += self.borrow.cost(w)
            ex_ante[t] = float(np.sqrt(np.sum((w * sigma_all[t]) ** 2)))
            aim[t, idx] = self._aim(day, gamma)
            reasons[t] = _reasons(reason0[t], alpha, w_pre, w, executed, forced, tradable, edge.edge[t] > 0,
                                  sol.budget_binding, aim[t])
        result = pol.PolicyResult(weights=weights, trades=trades, costs=cost, reasons=reasons, target=aim,
                                  start=start)
        result.constants = self._constants(market, edge, spread, spread_src, gamma, scale_used, status, start,
                                           navs, vol_exponent, spread_rel, horizon_edges)
        return result

    def _aim(self, day: Day, gamma: float) -> np.ndarray:
        """The cost-free optimum (Garleanu-Pedersen's aim, diagonal risk): alpha / (gamma h sigma^2), capped
        per name and scaled into the gross and volatility limits (neutrality not imposed): what the book
        would hold if trading were free. A reference for the guardrails, not a decision."""
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.nan_to_num(day.alpha / (gamma * day.horizon * day.sigma ** 2))
        for c in self.constraints:
            if isinstance(c, MaxWeight | AdvCap):
                cap = c.caps(day)
                a = np.clip(a, -cap, cap)
        for c in self.constraints:
            if isinstance(c, GrossLeverage) and np.abs(a).sum() > c.limit:
                a = a * c.limit / np.abs(a).sum()
            if isinstance(c, VolTarget):
                vol = float(np.sqrt(np.sum((a * day.sigma) ** 2)))
                if vol > c.daily():
                    a = a * c.daily() / vol
        return a

    def _constants(self, market: MarketPanel, edge, spread, src, gamma, scale, status, start,
                   navs, vol_exponent, spread_rel, horizon_edges=None) -> pd.DataFrame:
        dates = market.dates
        parts = [edge.frame(dates)]
        for h, h_edge in (horizon_edges or {}).items():  # what each other horizon adds: edge_per_bp_h1d, ...
            parts.append(h_edge.frame(dates).assign(constant=lambda f, h=h: f["constant"] + f"_h{h}d"))
        tradable = market.tradable
        with np.errstate(invalid="ignore"):
            med = np.nanmedian(np.where(tradable, spread, np.nan), axis=1)
        n_trad = np.maximum(tradable.sum(axis=1), 1)
        extra = {
            "spread_median_bps": med,
            "spread_share_quoted": ((src == SPREAD_QUOTED) & tradable).sum(axis=1) / n_trad,
            "spread_share_estimated": ((src == SPREAD_ESTIMATED) & tradable).sum(axis=1) / n_trad,
            "spread_share_fallback": ((src == SPREAD_FALLBACK) & tradable).sum(axis=1) / n_trad,
            "spread_estimate_reliability": spread_rel,  # split-half rank correlation of the OHLC estimates
            "risk_aversion": np.full(len(dates), gamma),
            "alpha_vol_exponent": vol_exponent.astype(float),  # alpha ~ expected return x (sigma/median)^p
            "nav": navs,  # capital multiple the trades were sized on (impact, ADV caps)
            "realized_risk_scale": scale.astype(float),
            "optimizer_relaxed": np.array([s == "relaxed" for s in status], dtype=float),
            "optimizer_fallback": np.array([s == "fallback" for s in status], dtype=float),
        }
        parts += [pd.DataFrame({"date": dates, "constant": k, "value": v}) for k, v in extra.items()]
        out = pd.concat(parts, ignore_index=True)
        out = out[out["date"] >= dates[start]] if len(dates) else out
        return out.sort_values(["constant", "date"]).reset_index(drop=True)


def _reasons(base, alpha, w_pre, w, executed, forced, tradable, measured, binding, aim) -> np.ndarray:
    from ml import policy as pol

    code = np.asarray(base, dtype=np.int8).copy()
    signal = base == pol.NONE
    if not measured:
        code = np.where(signal, pol.AB_UNMEASURED, code)
    traded = executed != 0
    unwind = traded & (np.abs(w) < np.abs(w_pre)) & (alpha * np.sign(w_pre) <= 0)
    code = np.where(traded, np.where(unwind, pol.UNWIND, pol.TRADE), code)
    held = ~traded & (w != 0)
    code = np.where(held, pol.HOLD_BAND, code)
    flat_alpha = ~traded & (w == 0) & (alpha != 0)
    wanted = np.abs(aim - w) > 1e-4
    code = np.where(flat_alpha, np.where(binding & wanted, pol.CAPPED, pol.HOLD_COST), code)
    code = np.where(held & binding & wanted, pol.CAPPED, code)
    code = np.where(forced, pol.CLOSED, code)
    code = np.where(~tradable & ~forced, pol.NONE, code)
    return code.astype(np.int8)
