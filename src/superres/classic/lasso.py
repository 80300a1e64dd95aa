"""The lasso, batched: min_a 0.5 ||y - D a||^2 + penalty ||a||_1 for many signals y at once.

Sparse-coding super-resolution solves this for every overlapping patch of an image (hundreds
of thousands per image) and for every training patch at each step of dictionary learning.
The authors solve it by feature-sign search (Lee, Battle, Raina and Ng, "Efficient sparse
coding algorithms", NIPS 2007), an exact active-set method; here it runs on all signals in
lock-step: each step activates, for every signal whose active set is optimal, the atom
that most violates optimality, then takes a feature-sign step (the exact solution on the
active set for its signs, and a line search back to where a coefficient first changes sign
if that lowers the objective). Signals leave the batch as soon as they are optimal.
"""

from __future__ import annotations

import torch

KKT_SLACK = 1e-4  # relative: an atom off the support may reach |d_j^T r| = penalty (1 + slack)
CAPACITY = 16  # active-set slots per signal to start with (grows as needed)


def soft_threshold(x: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """The proximal map of threshold * |x|: shrink towards zero, clip at zero."""
    return x.sign() * (x.abs() - threshold).clamp_min(0)


@torch.no_grad()
def lasso(
    dictionary: torch.Tensor,
    signals: torch.Tensor,
    penalty: float,
    *,
    gram: torch.Tensor | None = None,
    max_steps: int = 1000,
) -> torch.Tensor:
    """Codes (n x K) of `signals` (n x m) over the atoms (columns) of `dictionary` (m x K).

    Exact: on return every code satisfies the optimality conditions, |d_j^T r| = penalty on
    the support (with the coefficient's sign) and <= penalty (1 + KKT_SLACK) off it.
    `gram` (D^T D) may be passed when one dictionary codes many batches.
    """
    if dictionary.ndim != 2 or signals.ndim != 2 or signals.shape[1] != dictionary.shape[0]:
        raise ValueError(f"expected signals n x m and a dictionary m x K, got "
                         f"{tuple(signals.shape)} and {tuple(dictionary.shape)}")
    if penalty <= 0:
        raise ValueError(f"the lasso penalty must be positive, got {penalty}")
    gram = dictionary.T @ dictionary if gram is None else gram
    state = _ActiveSets(dictionary, gram, signals, penalty)
    for _ in range(max_steps):
        if state.check_and_activate():
            return state.codes
        state.feature_sign_step()
    raise RuntimeError(f"the lasso did not converge for {state.todo.numel()} signals in "
                       f"{max_steps} steps")


class _ActiveSets:
    """Feature-sign search's state for the signals still being solved: per signal a few
    slots, each holding an active atom, its coefficient, sign and d_j^T y, and the Gram
    matrix of the slots' atoms (kept up to date as atoms join, never gathered whole)."""

    def __init__(self, dictionary: torch.Tensor, gram: torch.Tensor, signals: torch.Tensor,
                 penalty: float) -> None:
        self.atoms_by_row = dictionary.T.contiguous()  # K x m: an atom per row, for gathers
        self.dictionary, self.gram, self.penalty = dictionary, gram, penalty
        count, slots = signals.shape[0], min(CAPACITY, gram.shape[0])
        device = signals.device
        self.codes = signals.new_zeros(count, gram.shape[0])
        self.todo = torch.arange(count, device=device)
        self.signals = signals  # those in `todo`
        self.index = torch.zeros(count, slots, dtype=torch.long, device=device)
        self.used = torch.zeros(count, slots, dtype=torch.bool, device=device)
        # The small problems in double precision: the line search compares objective values
        # that differ by far less than single precision resolves near the optimum.
        wide = {"dtype": torch.float64, "device": device}
        self.coef = torch.zeros(count, slots, **wide)
        self.sign = torch.zeros(count, slots, **wide)
        self.target = torch.zeros(count, slots, **wide)  # d_j^T y of the slots' atoms
        self.system = torch.zeros(count, slots, slots, **wide)  # Gram of the slots' atoms
        self.optimal_set = torch.ones(count, dtype=torch.bool, device=device)

    def check_and_activate(self) -> bool:
        """For the signals whose active set is optimal, measure d_j^T r over the whole
        dictionary: those no atom violates are finished (their codes are written and they
        leave the batch); the others take their worst violator, with the sign that lowers
        the objective. Returns whether every signal is finished."""
        rows = self.optimal_set.nonzero()[:, 0]
        index = self.index[rows]
        approximation = torch.einsum("ns,nsm->nm", self.coef[rows].to(self.signals.dtype),
                                     self.atoms_by_row[index])
        gradient = (self.signals[rows] - approximation) @ self.dictionary
        on_support = torch.zeros_like(gradient).scatter_add_(
            1, index, self.used[rows].to(gradient.dtype))
        worst, atom = gradient.abs().masked_fill_(on_support > 0, 0.0).max(dim=1)
        joining = worst > self.penalty * (1 + KKT_SLACK)
        if joining.any():
            self._add(rows[joining], atom[joining],
                      gradient[joining].gather(1, atom[joining, None])[:, 0])
        finished = torch.zeros_like(self.optimal_set)
        finished[rows] = ~joining
        if finished.any():
            self._finish(finished)
        return self.todo.numel() == 0

    def _add(self, rows: torch.Tensor, atom: torch.Tensor, gradient: torch.Tensor) -> None:
        """Put `atom` into a free slot of each signal in `rows`, at zero, with the sign of
        its `gradient` (d_j^T r): the direction that lowers the objective."""
        if not (~self.used[rows]).any(dim=1).all():
            self._grow()
        slot = (~self.used[rows]).to(torch.int8).argmax(dim=1)  # the first free slot
        self.index[rows, slot] = atom
        self.used[rows, slot] = True
        self.coef[rows, slot] = 0.0
        self.sign[rows, slot] = gradient.sign().double()
        self.target[rows, slot] = (self.signals[rows] * self.atoms_by_row[atom]).sum(dim=1).double()
        column = self.gram[atom[:, None], self.index[rows]].double()  # new atom against all slots
        self.system[rows, slot, :] = column
        self.system[rows, :, slot] = column

    def _finish(self, finished: torch.Tensor) -> None:
        """Write the codes of the finished signals and drop them from the batch."""
        self.codes[self.todo[finished]] = self.codes.new_zeros(
            int(finished.sum()), self.codes.shape[1]).scatter_add_(
            1, self.index[finished], self.coef[finished].to(self.codes.dtype))
        keep = ~finished
        for name in ("todo", "signals", "index", "used", "coef", "sign", "target",
                     "system", "optimal_set"):
            setattr(self, name, getattr(self, name)[keep])

    def _grow(self) -> None:
        """Double the slots of every signal (unused slots point at atom 0, masked off)."""
        extra = self.index.shape[1]
        self.index = torch.cat([self.index, torch.zeros_like(self.index)], dim=1)
        self.used = torch.cat([self.used, torch.zeros_like(self.used)], dim=1)
        self.coef = torch.cat([self.coef, torch.zeros_like(self.coef)], dim=1)
        self.sign = torch.cat([self.sign, torch.zeros_like(self.sign)], dim=1)
        self.target = torch.cat([self.target, torch.zeros_like(self.target)], dim=1)
        size = self.system.shape[1] + extra
        system = self.system.new_zeros(self.system.shape[0], size, size)
        system[:, :extra, :extra] = self.system
        self.system = system

    def feature_sign_step(self) -> None:
        """Solve the active set exactly for its signs, then keep the best point of the
        segment from the current coefficients to that solution."""
        used = self.used
        mask = used.to(self.system.dtype)
        system = self.system * (mask[:, :, None] * mask[:, None, :])
        system = system + torch.diag_embed(1 - mask)  # identity on the unused slots
        target = (self.target - self.penalty * self.sign) * mask
        solution, info = torch.linalg.solve_ex(system, target)
        solved = (info == 0) & ((_times(system, solution) - target).norm(dim=1)
                                <= 1e-8 * (1 + target.norm(dim=1)))  # not singular
        start = self.coef
        direction = solution - start
        pulled = _times(system, direction)
        curvature = 0.5 * (direction * pulled).sum(dim=1)
        slope = (start * pulled).sum(dim=1) - (self.target * direction * mask).sum(dim=1)
        # Where a coefficient changes sign on the way (0 < t < 1), and the end t = 1.
        valid = start * solution < 0
        crossing = start / (start - solution).where(valid, torch.ones_like(start))
        ends = torch.cat([crossing.where(valid, torch.ones_like(crossing)),
                          torch.ones_like(crossing[:, :1])], dim=1)  # n x (S + 1)
        points = start[:, None, :] + ends[:, :, None] * direction[:, None, :]
        value = slope[:, None] * ends + curvature[:, None] * ends**2 + self.penalty * (
            points.abs() * mask[:, None, :]).sum(dim=2)
        lowest, best = value.min(dim=1)
        step = ends.gather(1, best[:, None])
        coef = (start + step * direction) * mask
        coef = coef.masked_fill(valid & (crossing == step), 0.0)
        # The whole step to a solution that kept every sign: the active set is optimal.
        optimal = solved & (step[:, 0] == 1) & ((solution * self.sign > 0) | ~used).all(dim=1)
        # Otherwise the step must lower the objective. Rarely it cannot: the solution moves
        # a just-activated atom against its sign, or the active atoms are linearly
        # dependent. Then a sweep of coordinate descent over them, which always lowers it.
        improved = lowest < self.penalty * (start.abs() * mask).sum(dim=1)
        stalled = ~optimal & ~(solved & improved)
        if stalled.any():
            coef[stalled] = _coordinate_sweep(system[stalled], self.target[stalled],
                                              start[stalled], used[stalled], self.penalty)
        self.optimal_set = optimal
        self.coef = coef
        self.used = coef != 0
        self.sign = coef.sign()


def _times(system: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """A x for a batch of small matrices A (n x S x S) and vectors x (n x S)."""
    return torch.bmm(system, vectors[:, :, None])[:, :, 0]


def _coordinate_sweep(system: torch.Tensor, target: torch.Tensor, codes: torch.Tensor,
                      used: torch.Tensor, penalty: float) -> torch.Tensor:
    """One pass of exact minimisation over each active coefficient in turn."""
    codes = codes.clone()
    for slot in range(codes.shape[1]):
        row = system[:, slot]
        others = (row * codes).sum(dim=1) - row[:, slot] * codes[:, slot]
        alone = soft_threshold(target[:, slot] - others, penalty) / row[:, slot]
        codes[:, slot] = torch.where(used[:, slot], alone, codes[:, slot])
    return codes
