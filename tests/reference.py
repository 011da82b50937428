"""An independent reference for jaxauction's rules, metrics, utilities and regret, in plain numpy.

Written from the rules' definitions (the README and the mechanisms' docstrings),
not from the JAX code: loops and ``itertools`` over bidders, ranks and tie-breaks,
float64 throughout. A rule's reference returns the *distribution* of its
deterministic outcomes: a list of ``(probability, allocation [n, m], payments [n])``
over every way its random tie-break can fall. A deterministic rule returns one
entry of probability 1. The library's outcome for any key must be one of them,
and its mean over keys must approach their expectation.

``RULES`` maps each rule builder exported by ``jaxauction.mechanisms`` to its
reference; ``tests/test_reference.py`` fails when a builder has no entry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

Outcomes = list[tuple[float, np.ndarray, np.ndarray]]  # (probability, allocation [n, m], payments [n])


def _one(allocation, payments) -> Outcomes:
    return [(1.0, np.asarray(allocation, np.float64), np.asarray(payments, np.float64))]


def expectation(outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """The expected allocation and payments of a distribution of outcomes."""
    allocation = sum(p * a for p, a, _ in outcomes)
    payments = sum(p * q for p, _, q in outcomes)
    return allocation, payments


# --- single-item rules: bids [n] (one item) -------------------------------------------------------------------


def highest_bid_winners(bids: Sequence[float], reserve: float) -> list[int]:
    """The bidders who may win (each with equal probability): the tied highest bids, if they clear the reserve."""
    top = max(bids)
    if top < reserve:
        return []
    return [i for i, b in enumerate(bids) if b == top]


def _winner_pays(bids, reserve, price: Callable[[int], float]) -> Outcomes:
    n = len(bids)
    winners = highest_bid_winners(bids, reserve)
    if not winners:
        return _one(np.zeros((n, 1)), np.zeros(n))
    out = []
    for w in winners:
        allocation, payments = np.zeros((n, 1)), np.zeros(n)
        allocation[w, 0] = 1.0
        payments[w] = price(w)
        out.append((1.0 / len(winners), allocation, payments))
    return out


def kth_highest(bids: Sequence[float], k: int) -> float:
    """The k-th highest bid counting ties (k = 1: the highest); past the end, the lowest bid."""
    ranked = sorted(bids, reverse=True)
    return ranked[min(k, len(ranked)) - 1]


def first_price(bids, reserve=0.0) -> Outcomes:
    """The highest bid at or above the reserve wins (ties uniformly) and pays its bid."""
    return _winner_pays(bids, reserve, lambda w: bids[w])


def second_price(bids, reserve=0.0) -> Outcomes:
    """The winner pays the larger of the reserve and the second-highest bid (a tied top bid when tied)."""
    return _winner_pays(bids, reserve, lambda w: max(kth_highest(bids, 2), reserve))


def third_price(bids, reserve=0.0) -> Outcomes:
    """The winner pays the larger of the reserve and the third-highest bid (with 2 bidders, the lowest bid)."""
    return _winner_pays(bids, reserve, lambda w: max(kth_highest(bids, 3), reserve))


def discrete_myerson(bids, reserve=0.0, step=1.0) -> Outcomes:
    """The highest bid at or above the reserve wins (ties uniformly) and pays: the reserve if no other bid clears
    it; its bid if tied; else the highest other bid h plus step k / (k + 1), k the other bids at h, at most its
    bid."""

    def price(w: int) -> float:
        others = [b for i, b in enumerate(bids) if i != w]
        h = max(others)
        if h < reserve:
            return reserve
        if h == bids[w]:
            return bids[w]
        k = others.count(h)
        return min(h + step * k / (k + 1), bids[w])  # at most the bid (off the grid)

    return _winner_pays(bids, reserve, price)


def all_pay(bids, reserve=0.0) -> Outcomes:
    """Every bid at or above the reserve pays itself; the highest such bid wins (ties uniformly)."""
    paid = np.array([b if b >= reserve else 0.0 for b in bids])
    return [(p, a, paid) for p, a, _ in _winner_pays(bids, reserve, lambda w: 0.0)]


def prize_all_pay(bids, prizes, reserve=0.0) -> Outcomes:
    """Every entered bid (at or above the reserve) pays itself; the entered bid ranked k (0 = highest) gets
    ``prizes[k]`` of the item; tied bidders share the prizes of the ranks they occupy equally."""
    n = len(bids)
    prizes = list(prizes) + [0.0] * (n - len(prizes))
    entered = [i for i in range(n) if bids[i] >= reserve]
    allocation, payments = np.zeros((n, 1)), np.zeros(n)
    for i in entered:
        above = sum(1 for j in entered if bids[j] > bids[i])
        tied = sum(1 for j in entered if bids[j] == bids[i])
        allocation[i, 0] = sum(prizes[above:above + tied]) / tied
        payments[i] = bids[i]
    return _one(allocation, payments)


def random_allocation(bids, reserve=0.0) -> Outcomes:
    """A uniformly random bidder among those bidding at least the reserve wins and pays the reserve."""
    n = len(bids)
    eligible = [i for i in range(n) if bids[i] >= reserve]
    if not eligible:
        return _one(np.zeros((n, 1)), np.zeros(n))
    out = []
    for w in eligible:
        allocation, payments = np.zeros((n, 1)), np.zeros(n)
        allocation[w, 0], payments[w] = 1.0, reserve
        out.append((1.0 / len(eligible), allocation, payments))
    return out


def procurement(bids, rule="first_price", ceiling=1e9) -> Outcomes:
    """A reverse auction: the lowest ask at or below the ceiling wins (ties uniformly) and is paid its ask
    (first price) or the smaller of the second-lowest ask and the ceiling (second price); payments are negative."""
    n = len(bids)
    low = min(bids)
    if low > ceiling:
        return _one(np.zeros((n, 1)), np.zeros(n))
    winners = [i for i in range(n) if bids[i] == low]
    second_lowest = sorted(bids)[1]
    out = []
    for w in winners:
        allocation, payments = np.zeros((n, 1)), np.zeros(n)
        allocation[w, 0] = 1.0
        payments[w] = -(bids[w] if rule == "first_price" else min(second_lowest, ceiling))
        out.append((1.0 / len(winners), allocation, payments))
    return out


def multi_unit(bids, units, pricing="uniform", reserve=0.0) -> Outcomes:
    """``units`` identical units, one per bidder: the ``units`` highest bids win if they clear the reserve (ties
    broken uniformly: every set of tied bidders that fills the units is equally likely). Pay-as-bid: winners pay
    their bids; uniform: every winner pays the larger of the reserve and the highest losing bid."""
    n = len(bids)
    ranked = sorted(bids, reverse=True)
    cut = ranked[units - 1]  # the lowest bid that can take a unit
    sure = [i for i in range(n) if bids[i] > cut]
    tied = [i for i in range(n) if bids[i] == cut]
    sets = list(itertools.combinations(tied, units - len(sure)))
    price = max(ranked[units], reserve)  # the (units + 1)-th highest bid
    out = []
    for chosen in sets:
        allocation, payments = np.zeros((n, 1)), np.zeros(n)
        for i in [*sure, *chosen]:
            if bids[i] >= reserve:
                allocation[i, 0] = 1.0
                payments[i] = bids[i] if pricing == "pay_as_bid" else price
        out.append((1.0 / len(sets), allocation, payments))
    return out


# --- several items -------------------------------------------------------------------------------------------


def simultaneous(bids: np.ndarray, rules: Sequence[Callable[[Sequence[float]], Outcomes]], decay=1.0) -> Outcomes:
    """Item j sold by ``rules[j]`` on column j, tie-breaks independent across items; a bidder winning k >= 1 items
    pays the sum of its payments times ``decay^(k - 1)``."""
    n, m = bids.shape
    per_item = [rules[j](list(bids[:, j])) for j in range(m)]
    out = []
    for combo in itertools.product(*per_item):
        probability = math.prod(p for p, _, _ in combo)
        allocation = np.concatenate([a for _, a, _ in combo], axis=1)
        payments = sum(q for _, _, q in combo)
        won = allocation.sum(axis=1)
        payments = payments * np.where(won > 0, decay ** np.maximum(won - 1, 0), 1.0)
        out.append((probability, allocation, payments))
    return out


def vcg(bids: np.ndarray, decay=1.0) -> Outcomes:
    """VCG over every assignment of items to bidders or to nobody; a bidder winning set S is worth
    ``sum_{j in S} b_j decay^(|S| - 1)``; the first welfare-maximising assignment in enumeration order;
    Clarke payments ``W*_{-i} - (W* - w_i)``."""
    n, m = bids.shape

    def worth(assignment, i):
        items = [j for j in range(m) if assignment[j] == i]
        return sum(bids[i, j] for j in items) * decay ** (len(items) - 1) if items else 0.0

    options = list(itertools.product(range(n + 1), repeat=m))
    welfare = [sum(worth(a, i) for i in range(n)) for a in options]
    best = options[int(np.argmax(welfare))]
    allocation, payments = np.zeros((n, m)), np.zeros(n)
    for j, i in enumerate(best):
        if i < n:
            allocation[i, j] = 1.0
    for i in range(n):
        without = max(sum(worth(a, k) for k in range(n) if k != i) for a in options if i not in a)
        payments[i] = without - (max(welfare) - worth(best, i))
    return _one(allocation, payments)


def affine_maximizer(bids: np.ndarray, allocations, weights, boosts) -> Outcomes:
    """The menu entry ``k`` (allocations ``[K, n, m]``) of largest ``sum_i w_i sum_j A_kij b_ij + boost_k``, the
    lowest ``k`` on ties; bidder ``i`` pays ``(best the others could have, without i: max_k sum_{j != i} w_j
    b_j(A_k) + boost_k) - (what they get: the same sum at the chosen k)``, divided by ``w_i``."""
    n = bids.shape[0]
    allocations = np.asarray(allocations, np.float64)

    def others(k, i):
        return sum(weights[j] * float(np.sum(allocations[k, j] * bids[j])) for j in range(n) if j != i) + boosts[k]

    welfare = [others(k, -1) for k in range(len(boosts))]
    best = welfare.index(max(welfare))
    payments = [(max(others(k, i) for k in range(len(boosts))) - others(best, i)) / weights[i] for i in range(n)]
    return _one(allocations[best], payments)


def myersonnet_virtual_value(x: float, log_slopes, intercepts, scale: float) -> float:
    """One bidder's ``s min_k max_j (exp(alpha_kj) x / s + beta_kj)``, by loops."""
    return scale * min(max(math.exp(a) * x / scale + b for a, b in zip(row_a, row_b, strict=True))
                       for row_a, row_b in zip(log_slopes, intercepts, strict=True))  # fmt: skip


def myersonnet(bids: np.ndarray, log_slopes, intercepts, scales) -> Outcomes:
    """The highest virtual value wins if positive (the lowest index on ties), paying the least bid that would
    still win: found by bisection on its (increasing) virtual value, not by inverting the network."""
    n = bids.shape[0]
    nets = [(np.asarray(log_slopes[min(i, len(log_slopes) - 1)], np.float64),
             np.asarray(intercepts[min(i, len(intercepts) - 1)], np.float64)) for i in range(n)]  # fmt: skip
    phi = [myersonnet_virtual_value(float(bids[i, 0]), *nets[i], scales[i]) for i in range(n)]
    allocation, payments = np.zeros((n, 1)), np.zeros(n)
    best = max(phi)
    if best > 0:
        w = phi.index(best)
        target = max([0.0] + [phi[j] for j in range(n) if j != w])
        lo, hi = 0.0, float(bids[w, 0])  # phi_w(hi) >= target; find the least such bid
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if myersonnet_virtual_value(mid, *nets[w], scales[w]) >= target else (mid, hi)
        allocation[w, 0], payments[w] = 1.0, hi
    return _one(allocation, payments)


# --- wrappers ------------------------------------------------------------------------------------------------


def with_entry_fee(bids: np.ndarray, inner: Callable[[np.ndarray], Outcomes], fee: float) -> Outcomes:
    """Participants (a positive bid on some item) pay the fee on top; only they can win; others pay nothing."""
    participates = (bids > 0).any(axis=1)
    return [
        (p, a * participates[:, None], np.where(participates, q + fee, 0.0)) for p, a, q in inner(bids)
    ]


def phased(bids: np.ndarray, inner: Callable[[np.ndarray, int], Outcomes], phases: int, tau: float) -> Outcomes:
    """The rule of the phase holding ``tau``: ``inner(bids, phase)`` with ``phase = min(int(tau * phases),
    phases - 1)``."""
    return inner(bids, min(int(math.floor(tau * phases)), phases - 1))


def teaser_first_price(bids, discount: float, teaser: float, tau: float, reserve: float = 0.0) -> Outcomes:
    """First price, the winner paying ``discount`` x its bid while ``tau < teaser`` and its bid afterwards."""
    share = discount if tau < teaser else 1.0
    return [(p, a, q * share) for p, a, q in first_price(bids, reserve)]


def declining_reserve_first_price(bids, reserves, tau: float) -> Outcomes:
    """First price with the reserve of the phase holding ``tau``: ``reserves[k]``, ``k = min(int(tau K), K - 1)``."""
    return first_price(bids, reserves[min(int(math.floor(tau * len(reserves))), len(reserves) - 1)])


def schedule_net(params: dict, x: float, tau: float, bid_scale: float) -> tuple[float, float]:
    """``ScheduleNet`` by hand: tanh layers ``share_i`` over ``(x, tau)`` then ``share_out``, and ``reserve_i``
    over ``tau`` then ``reserve_out``; the share is the sigmoid of the first, the reserve ``bid_scale x`` the
    sigmoid of the second."""
    p = {name: {k: np.asarray(v, np.float64) for k, v in layer.items()} for name, layer in params["params"].items()}
    out = []
    for head, h in (("share", np.array([x, tau])), ("reserve", np.array([tau]))):
        i = 0
        while f"{head}_{i}" in p:
            h = np.tanh(h @ p[f"{head}_{i}"]["kernel"] + p[f"{head}_{i}"]["bias"])
            i += 1
        out.append(float(h @ p[f"{head}_out"]["kernel"][:, 0] + p[f"{head}_out"]["bias"][0]))
    return 1.0 / (1.0 + math.exp(-out[0])), bid_scale / (1.0 + math.exp(-out[1]))


def learned_dynamic_first_price(bids, params: dict, tau: float, bid_scale: float) -> Outcomes:
    """First price at the network's reserve at ``tau``, the winner paying the network's share of its bid."""
    reserve = schedule_net(params, 0.0, tau, bid_scale)[1]
    shares = np.array([schedule_net(params, b / bid_scale, tau, bid_scale)[0] for b in bids])
    return [(p, a, q * shares) for p, a, q in first_price(bids, reserve)]


def with_budgets(bids: np.ndarray, inner: Callable[[np.ndarray], Outcomes], budgets, penalties) -> Outcomes:
    """A bidder who wins something and is charged more than its budget loses what it won and pays its penalty."""
    out = []
    for p, a, q in inner(bids):
        over = (a.sum(axis=1) > 0) & (q > np.asarray(budgets))
        out.append((p, np.where(over[:, None], 0.0, a), np.where(over, penalties, q)))
    return out


# --- utilities and metrics (one auction) ---------------------------------------------------------------------


def received_value(values: np.ndarray, allocation: np.ndarray, demand: str = "additive") -> np.ndarray:
    """``[n]`` the value each bidder receives. Additive: ``sum_j a_ij v_ij``. Unit demand: the bidder keeps its
    best item, and a lottery over items gives it at most the best lottery over single items with these
    marginals: items taken in decreasing value, each with the probability left (``sum a_ij v_ij`` when a row
    sums to at most 1; the highest value won for a 0/1 allocation)."""
    if demand == "additive":
        return (allocation * values).sum(axis=1)
    out = np.zeros(values.shape[0])
    for i in range(values.shape[0]):
        left = 1.0
        for j in sorted(range(values.shape[1]), key=lambda j: -values[i, j]):
            take = min(allocation[i, j], max(left, 0.0))
            out[i] += take * values[i, j]
            left -= take
    return out


def utility(name: str, values, allocation, payments, a: float = 0.5, demand: str = "additive") -> np.ndarray:
    """Each bidder's utility: ``quasi_linear`` r = received value - payment; ``crra`` sign(r)|r|^a; ``cara``
    1 - exp(-a r); ``seller`` (values are costs) -payment - cost of what it supplies."""
    received = received_value(np.asarray(values, np.float64), allocation, demand)
    surplus = received - payments
    if name == "quasi_linear":
        return surplus
    if name == "crra":
        return np.sign(surplus) * np.abs(surplus) ** a
    if name == "cara":
        return 1.0 - np.exp(-a * surplus)
    if name == "seller":
        return -payments - received
    raise KeyError(name)


def revenue(payments: np.ndarray) -> float:
    return float(np.sum(payments))


def welfare(values: np.ndarray, allocation: np.ndarray) -> float:
    return float(received_value(values, allocation).sum())


def optimal_welfare(values: np.ndarray, units: int = 1) -> float:
    """Each item to the bidders who value it most (``units`` of them for ``units`` identical units)."""
    return float(sum(sum(sorted(values[:, j], reverse=True)[:units]) for j in range(values.shape[1])))


def procurement_costs(costs: np.ndarray, allocation: np.ndarray) -> tuple[float, float]:
    """``(cheapest, realised)``: what the procured quantity would cost from the cheapest seller, and what it cost."""
    quantity = allocation.sum(axis=0)  # per item
    return float((quantity * costs.min(axis=0)).sum()), float((allocation * costs).sum())


# --- regret by exhaustive search -----------------------------------------------------------------------------


def ex_post_regret(rule: Callable[[np.ndarray], Outcomes], values: np.ndarray, grid: np.ndarray,
                   demand: str = "additive") -> np.ndarray:  # fmt: skip
    """``[n]`` each bidder's best expected gain (over the rule's tie-breaks) from any report on ``grid`` (one item:
    ``[G]``; several: every combination of the grid per item) while the others report truthfully."""
    n, m = values.shape

    def expected_utility(reports, i):
        return sum(p * utility("quasi_linear", values, a, q, demand=demand)[i] for p, a, q in rule(reports))

    regret = np.zeros(n)
    for i in range(n):
        truthful = expected_utility(values, i)
        for report in itertools.product(grid, repeat=m):
            reports = values.copy()
            reports[i] = report
            regret[i] = max(regret[i], expected_utility(reports, i) - truthful)
    return regret


# --- learners: one update, and the regret of a sequence of mixed strategies -----------------------------------


def exp3_update(weights: np.ndarray, bid_actions: Sequence[int], utility: float, eta: float, scale: float
                ) -> np.ndarray:  # fmt: skip
    """EXP3's probabilities ``[A]`` after one auction: ``weights`` ``[A]`` (a distribution) were played, the bid made
    by every action in ``bid_actions`` earned ``utility``; each of them is charged its importance-weighted loss."""
    loss = (1 - utility / scale) / 2
    played = sum(weights[a] for a in bid_actions)
    logs = np.log(np.maximum(weights, 1e-300)) - np.array([eta * loss / played if a in bid_actions else 0.0
                                                           for a in range(len(weights))])  # fmt: skip
    new = np.where(weights > 0, np.exp(logs - logs.max()), 0.0)
    return new / new.sum()


def stationary(q: np.ndarray) -> np.ndarray:
    """The stationary distribution of a row-stochastic matrix: the left eigenvector of eigenvalue 1."""
    eigenvalues, vectors = np.linalg.eig(q.T)
    p = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1))])
    return p / p.sum()


def blum_mansour_update(q: np.ndarray, rewards: np.ndarray, eta: float, scale: float) -> np.ndarray:
    """Blum-Mansour's instances ``q [A, A]`` after one round with every action's reward ``rewards [A]``: instance
    ``i`` is a Hedge step on the rewards scaled by ``p_i``, ``p`` the stationary distribution played."""
    p = stationary(q)
    new = q * np.exp(eta * p[:, None] * rewards[None, :] / scale)
    return new / new.sum(axis=1, keepdims=True)


def win_probability(q: np.ndarray, n: int) -> np.ndarray:
    """``[A]`` the chance that bid ``a`` wins (highest bid, ties uniformly) against ``n - 1`` rivals bidding
    i.i.d. ``q [A]`` on the same grid, by enumerating every profile of the rivals' bids."""
    out = np.zeros(len(q))
    for a in range(len(q)):
        for rivals in itertools.product(range(len(q)), repeat=n - 1):
            p = float(np.prod([q[r] for r in rivals]))
            if max(rivals, default=-1) <= a:
                out[a] += p / (1 + sum(r == a for r in rivals))
    return out


def expected_hedge_step(log_weights: np.ndarray, values, pmf, bids, allowed, price, n: int, eps: float,
                        rho: float, reserve: float = 0.0) -> np.ndarray:  # fmt: skip
    """Symmetric Hedge bidders' expected log-weights ``[C, A]`` after one auction in which the highest bid at or
    above ``reserve`` wins and pays ``price [A]``: every draw of the bidder's own value and its rivals' values
    and bids, each rival playing the softmax of its value's row, the exponential update of the drawn value's row
    by every bid's counterfactual utility (ties: the bidder's share of the uniform tie-break), weighted by its
    probability."""
    C, A = log_weights.shape
    pi = np.where(allowed, np.exp(log_weights - log_weights.max(axis=1, keepdims=True)), 0.0)
    pi = pi / pi.sum(axis=1, keepdims=True)
    out = np.array(log_weights, np.float64)
    for c in range(C):
        for rivals in itertools.product(range(C), range(A), repeat=n - 1):  # (value, bid) of each rival
            pairs = list(zip(rivals[::2], rivals[1::2], strict=True))
            p = pmf[c] * float(np.prod([pmf[rc] * pi[rc, ra] for rc, ra in pairs]))
            if p == 0:
                continue
            for a in range(A):
                if not allowed[c, a]:
                    continue
                top = max(ra for _, ra in pairs)
                share = 0.0 if top > a or bids[a] < reserve else 1.0 / (1 + sum(ra == a for _, ra in pairs))
                r = (values[c] - price[a]) / rho  # a win's utility; the update is linear in the win
                step = r * np.log1p(eps) if r > 0 else -r * np.log1p(-eps)
                out[c, a] += p * share * step
    return out


def expected_greedy_step(estimates, counts, t: int, values, pmf, allowed, price, n: int, explore_steps: int,
                         half_life: float, temperature: float, sells) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Epsilon-greedy's softmax relaxation, one auction: each value plays ``(1 - eps) softmax(estimates /
    temperature) + eps uniform`` over its allowed bids (``eps = 1`` before ``explore_steps``, ``0.5 ** (t /
    half_life)`` from it, when every count is first set to 1); a pull of ``(c, a)`` happens at the rate
    ``pmf_c pi[c, a]`` and earns ``sells_a`` x the win share x ``(v_c - price_a)``, the win share enumerated over
    every rival value and bid; the running mean moves by ``rate (utility - estimate) / (count + rate + 1)``."""
    C, A = estimates.shape
    eps = 1.0 if t < explore_steps else 0.5 ** (t / half_life)
    if t == explore_steps:
        counts = np.ones_like(counts)
    pi = np.zeros((C, A))
    for c in range(C):
        ok = [a for a in range(A) if allowed[c, a]]
        z = np.array([estimates[c, a] / temperature for a in ok])
        soft = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        for i, a in enumerate(ok):
            pi[c, a] = (1 - eps) * soft[i] + eps / len(ok)
    win = np.zeros(A)
    for a in range(A):
        for rivals in itertools.product(range(C), range(A), repeat=n - 1):
            pairs = list(zip(rivals[::2], rivals[1::2], strict=True))
            p = float(np.prod([pmf[rc] * pi[rc, ra] for rc, ra in pairs]))
            if p and max(ra for _, ra in pairs) <= a:
                win[a] += p / (1 + sum(ra == a for _, ra in pairs))
    new_estimates, new_counts = np.array(estimates, np.float64), np.array(counts, np.float64)
    for c in range(C):
        for a in range(A):
            if allowed[c, a]:
                rate = pmf[c] * pi[c, a]
                new_counts[c, a] += rate
                utility = sells[a] * win[a] * (values[c] - price[a])
                new_estimates[c, a] += rate * (utility - estimates[c, a]) / (new_counts[c, a] + 1)
    return new_estimates, new_counts


def expected_auction(pi: np.ndarray, values, pmf, price, n: int, bids=None, reserve: float = 0.0
                     ) -> tuple[float, float]:  # fmt: skip
    """Expected revenue and welfare of one auction in which ``n`` bidders draw values from ``pmf`` and bid by
    ``pi [C, A]`` (bid ``a`` is ``bids[a]``), the highest bid at or above ``reserve`` wins (ties uniformly) and
    pays ``price[bid]``: every profile enumerated."""
    C, A = pi.shape
    revenue = welfare = 0.0
    for profile in itertools.product(range(C), range(A), repeat=n):
        pairs = list(zip(profile[::2], profile[1::2], strict=True))
        p = float(np.prod([pmf[c] * pi[c, a] for c, a in pairs]))
        if p == 0:
            continue
        top = max(a for _, a in pairs)
        if bids is not None and bids[top] < reserve:
            continue  # no sale
        winners = [c for c, a in pairs if a == top]
        revenue += p * price[top]
        welfare += p * float(np.mean([values[c] for c in winners]))
    return revenue, welfare


def mean_based_limit(values, pmf, available, points: int = 60_000) -> float:
    """The revenue per auction of pay-your-bid in which bid ``b`` may win over the last ``available[b]`` of the
    horizon, from one buyer who at every point plays the bid at most its value with the highest cumulative
    utility so far (ties: the highest bid), simulated on ``points`` midpoints of the horizon by loops."""
    revenue = 0.0
    for v, p in zip(values, pmf, strict=True):
        paid = 0.0
        for i in range(points):
            tau = (i + 0.5) / points
            best = None
            for b, x in zip(values, available, strict=True):
                if b > v or tau < 1.0 - x:
                    continue  # above the value, or not yet above the reserve
                banked = (v - b) * (tau - (1.0 - x))
                if best is None or banked >= best[0]:
                    best = (banked, b)
            paid += best[1] if best is not None else 0.0
        revenue += p * paid / points
    return revenue


def external_regret(probs: np.ndarray, rewards: np.ndarray) -> float:
    """``max_j sum_t r_t(j) - sum_t sum_a p_t(a) r_t(a)`` for ``probs``, ``rewards`` ``[T, A]``, by loops."""
    T, A = rewards.shape
    earned = sum(probs[t, a] * rewards[t, a] for t in range(T) for a in range(A))
    return max(sum(rewards[t, j] for t in range(T)) for j in range(A)) - earned


def swap_regret(probs: np.ndarray, rewards: np.ndarray) -> float:
    """``sum_i max_j sum_t p_t(i) (r_t(j) - r_t(i))``, by loops."""
    T, A = rewards.shape
    return sum(max(sum(probs[t, i] * (rewards[t, j] - rewards[t, i]) for t in range(T)) for j in range(A))
               for i in range(A))  # fmt: skip


# --- the registry: every rule builder exported by jaxauction.mechanisms ---------------------------------------

# builder name -> a function (bids [n, m], **the builder's options) -> Outcomes
RULES: dict[str, Callable[..., Outcomes]] = {
    "first_price": lambda bids, reserve=0.0: first_price(list(bids[:, 0]), reserve),
    "second_price": lambda bids, reserve=0.0: second_price(list(bids[:, 0]), reserve),
    "third_price": lambda bids, reserve=0.0: third_price(list(bids[:, 0]), reserve),
    "all_pay": lambda bids, reserve=0.0: all_pay(list(bids[:, 0]), reserve),
    "discrete_myerson": lambda bids, reserve=0.0, step=1.0: discrete_myerson(list(bids[:, 0]), reserve, step),
    "prize_all_pay": lambda bids, prizes=(1.0,), reserve=0.0: prize_all_pay(list(bids[:, 0]), prizes, reserve),
    "random_allocation": lambda bids, reserve=0.0: random_allocation(list(bids[:, 0]), reserve),
    "procurement": lambda bids, rule="first_price", ceiling=1e9: procurement(list(bids[:, 0]), rule, ceiling),
    "multi_unit": lambda bids, units, pricing="uniform", reserve=0.0: multi_unit(list(bids[:, 0]), units, pricing,
                                                                                 reserve),
    "vcg": lambda bids, decay=1.0: vcg(bids, decay),
    "simultaneous": simultaneous,
    "with_entry_fee": with_entry_fee,
    "phased": phased,
    "dynamic": lambda bids, inner, tau: inner(bids, tau),  # the base rule with the params of time tau
    "teaser_first_price": lambda bids, discount, teaser, tau, reserve=0.0: teaser_first_price(
        list(bids[:, 0]), discount, teaser, tau, reserve),
    "declining_reserve_first_price": lambda bids, reserves, tau: declining_reserve_first_price(
        list(bids[:, 0]), reserves, tau),
    "learned_dynamic_first_price": lambda bids, params, tau, bid_scale: learned_dynamic_first_price(
        list(bids[:, 0]), params, tau, bid_scale),
    "with_budgets": with_budgets,
    "affine_maximizer": affine_maximizer,
    "myersonnet": myersonnet,
}


# The 2x2 combinatorial settings' affine maximizers with the parameters of RegretNet's reference code
# (saisrivatsan/deep-opt-auctions, regretNet/baseline/baseline.py): weights mu per bidder, a boost lambda per entry
# of its 9 allocations [bidder][item 1, item 2, bundle]. Its list repeats "bidder 1 gets item 1" (entry 3) where
# "bidder 1 gets item 2" belongs (the boosts mirror entries 1 and 2); CA_ENTRIES holds the intended list,
# CA_ENTRIES_AS_CODED the one the code runs.
CA_ENTRIES = np.array([[[0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]],
                       [[0, 1, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 1, 0]],
                       [[0, 1, 0], [1, 0, 0]], [[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]], np.float64)  # fmt: skip
CA_ENTRIES_AS_CODED = CA_ENTRIES.copy()
CA_ENTRIES_AS_CODED[3] = CA_ENTRIES[1]
CA_AMAS = {  # (setting, name): (weights, boosts)
    ("ca_2x2_sym", "VVCA"): ((1.0, 1.43), (3.50, 2.25, 1.88, 2.25, 1.88, 0.63, 0.63, 1.52, 0.0)),
    ("ca_2x2_sym", "AMA_bsym"): ((1.0, 1.0), (2.95, 1.53, 1.53, 1.485, 1.48, 0.27, 0.27, 0.44, 0.44)),
    ("ca_2x2_asym", "VVCA"): ((1.0, 0.88), (3.88, 2.63, 1.38, 2.75, 1.25, 0.25, 0.0, 1.88, 0.06)),
    ("ca_2x2_asym", "AMA_bsym"): ((1.0, 1.0), (5.14, 1.70, 1.70, 1.70, 1.70, 0.60, 0.60, 0.03, 0.03)),
}


def combinatorial_allocations(n: int) -> list[np.ndarray]:
    """Every deterministic allocation ``[n, 3]`` of two items and their bundle: each bidder gets item 1, item 2,
    the bundle or nothing, and no item goes out twice (alone or in the bundle)."""
    out = []
    for choice in itertools.product(range(4), repeat=n):  # 0 nothing, 1 item 1, 2 item 2, 3 the bundle
        a = np.zeros((n, 3))
        for i, c in enumerate(choice):
            if c:
                a[i, c - 1] = 1.0
        if a[:, 0].sum() + a[:, 2].sum() <= 1 and a[:, 1].sum() + a[:, 2].sum() <= 1:
            out.append(a)
    return out


def affine_maximizer_revenue(values: np.ndarray, allocations, weights, boosts) -> np.ndarray:
    """``[P]`` the revenue of ``affine_maximizer`` on profiles ``values [P, n, m]``, vectorised over profiles (the
    same formulas: the first entry of largest affine welfare, weighted Clarke pivot payments)."""
    allocations, weights = np.asarray(allocations, np.float64), np.asarray(weights, np.float64)
    own = np.einsum("knm,pnm->pkn", allocations, values) * weights  # [P, K, n] w_i b_i(A_k)
    total = own.sum(-1) + np.asarray(boosts, np.float64)  # [P, K]
    without = total[..., None] - own  # [P, K, n]
    best = np.argmax(total, axis=1)
    chosen = np.take_along_axis(without, best[:, None, None], axis=1)[:, 0]  # [P, n]
    return ((without.max(axis=1) - chosen) / weights).sum(-1)


def affine_maximizer_unused(values: np.ndarray, allocations, weights, boosts) -> np.ndarray:
    """``[K]`` bool: the menu entries that no profile of ``values [P, n, m]`` chooses (the first entry of largest
    affine welfare, by loops over profiles): what ``revive`` replaces."""
    allocations, weights = np.asarray(allocations, np.float64), np.asarray(weights, np.float64)
    unused = np.ones(len(boosts), bool)
    for v in np.asarray(values, np.float64):
        welfare = [sum(weights[i] * float(np.sum(a[i] * v[i])) for i in range(len(v))) + float(b)
                   for a, b in zip(allocations, boosts, strict=True)]  # fmt: skip
        unused[welfare.index(max(welfare))] = False
    return unused


# --- the networks shipped by dimonenka/optimaler (jaxauction.optimaler) -----------------------------------------
# Their forward passes transcribed from the reference's PyTorch modules (core/nets, layers/), on its state dict's
# own names, float64, one profile [n, m] at a time.


def _linear(state: dict, name: str, x: np.ndarray, bias: bool = True) -> np.ndarray:
    out = x @ np.asarray(state[f"{name}.weight"], np.float64).T
    return out + np.asarray(state[f"{name}.bias"], np.float64) if bias else out


def _layer_norm(state: dict, name: str, x: np.ndarray, eps: float) -> np.ndarray:
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * state[f"{name}.weight"] + state[f"{name}.bias"]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _layers(state: dict, prefix: str) -> int:
    """How many numbered modules ``prefix.0``, ``prefix.1``, ... the state dict holds."""
    return len({k.split(".")[1] for k in state if k.startswith(prefix + ".")})


def _exchangeable(state: dict, name: str, x: np.ndarray) -> np.ndarray:
    """``Exchangeable``: x [n, m, C] -> channel(x) + row(mean over bidders) + col(mean over items) + mat(mean)."""
    row, col = x.mean(0, keepdims=True), x.mean(1, keepdims=True)
    return (_linear(state, f"{name}.channel_layer", x) + _linear(state, f"{name}.row_layer", row, False)
            + _linear(state, f"{name}.col_layer", col, False)
            + _linear(state, f"{name}.mat_layer", row.mean(1, keepdims=True), False))  # fmt: skip


def _with_dummy_row(logits: np.ndarray) -> np.ndarray:
    """``cat([logits, -logits.sum(0)])``, softmax over bidders, the dummy row dropped."""
    return _softmax(np.concatenate([logits, -logits.sum(0, keepdims=True)], 0), 0)[:-1]


def _mh_attention(state: dict, name: str, x: np.ndarray, heads: int) -> np.ndarray:
    """``MultiHeadAttention`` over the sequences x [batch, length, C]: pre-LayerNorm, no biases, residual."""
    h = _layer_norm(state, f"{name}.layer_norm", x, 1e-6)
    q, k, v = (_linear(state, f"{name}.w_{p}s", h, False) for p in "qkv")
    b, length, width = q.shape
    d = width // heads
    q, k, v = (t.reshape(b, length, heads, d).transpose(0, 2, 1, 3) for t in (q, k, v))
    attn = _softmax((q / math.sqrt(d)) @ k.transpose(0, 1, 3, 2), -1)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(b, length, width)
    return _linear(state, f"{name}.fc", out, False) + x


def optimaler_network(state: dict, bids: np.ndarray, heads: int = 2, activation: str = "relu"
                      ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(allocation [n, m], payments [n])`` of an optimaler RegretNet (``AdditiveNet``), EquivariantNet
    (``AdditiveNetExchangeable``, ``activation`` its ``activation_exch``) or RegretFormer
    (``AdditiveNetAttention``, ``heads`` attention heads): each pays ``sigmoid(.) * sum_j a_ij b_ij``."""
    x = np.asarray(bids, np.float64)
    n, m = x.shape
    body = _layers(state, "body_layers")
    if "alloc_layers.0.weight" in state:  # RegretNet: two tanh MLPs over the flattened bids
        def mlp(part):
            layers = _layers(state, f"{part}_layers")
            h = x.reshape(-1)
            for i in range(layers - 1):
                h = np.tanh(_linear(state, f"{part}_layers.{i}", h))
            return _linear(state, f"{part}_layers.{layers - 1}", h)

        allocation = _softmax(mlp("alloc").reshape(n + 1, m), 0)[:-1]
        fractions = _sigmoid(mlp("pay"))
    elif "head_layer.alloc_layer.channel_layer.weight" in state:  # EquivariantNet
        act = np.tanh if activation == "tanh" else (lambda t: np.maximum(t, 0.0))
        h = act(_exchangeable(state, "input_layer", x[..., None]))
        for i in range(body):
            h = act(_exchangeable(state, f"body_layers.{i}", h))
        allocation = _with_dummy_row(_exchangeable(state, "head_layer.alloc_layer", h)[..., 0])
        fractions = _sigmoid(_exchangeable(state, "head_layer.pay_layer", h)[..., 0].mean(1))
    else:  # RegretFormer: tanh(exchangeable), blocks of row and column attention, the attention head
        h = np.tanh(_exchangeable(state, "input_layer", x[..., None]))
        for i in range(body):
            name = f"body_layers.{i}"
            items = _mh_attention(state, f"{name}.attention_item", h, heads)  # each bidder's row
            agents = _mh_attention(state, f"{name}.attention_agent", h.transpose(1, 0, 2), heads).transpose(1, 0, 2)
            h = np.tanh(_linear(state, f"{name}.fc", np.tanh(np.concatenate([items, agents], -1))) + h)
        h = _layer_norm(state, "head_layer.layer_norm", h, 1e-6)
        agent = _linear(state, "head_layer.encoder_agent", h, False).mean(1)  # [n, C]
        item = _linear(state, "head_layer.encoder_item", h, False).mean(0)  # [m, C]
        allocation = _with_dummy_row(agent / math.sqrt(h.shape[-1]) @ item.T)
        fractions = _sigmoid(_linear(state, "head_layer.fc_payment.0", agent)[:, 0])
    return allocation, fractions * np.sum(allocation * x, axis=1)
