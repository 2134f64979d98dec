"""How many records of each category to take: targets from counts or shares, the val split, repeats, the general mix.

Pure arithmetic over the counts the store reports, so every rule about quotas and shares can be
read (and tested) in one place; the store then samples exactly these numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import WorkbenchError

Category = str | None  # None: records without a category


@dataclass
class CategoryPlan:
    """One (pool, category): what is there, what the config asks for, and what the export takes."""

    pool: str  # 'task' (the chosen badcase datasets) or 'general'
    category: Category
    available: int  # records that may be exported (after every exclusion)
    fixed: int  # of them with status 'fixed'
    target: int | None  # records asked for, train lines plus val; None: take everything
    take: int  # distinct records taken
    val: int  # of them in val
    train_rows: int  # train lines, repeats included

    @property
    def train_records(self) -> int:
        return self.take - self.val

    @property
    def repeats(self) -> int:
        """Extra train lines from up-sampling (copies beyond the first)."""
        return self.train_rows - self.train_records

    @property
    def rows(self) -> int:
        return self.train_rows + self.val

    @property
    def short(self) -> int:
        """How many lines below its target the category ends up (0 when it meets it)."""
        return max(0, self.target - self.rows) if self.target is not None else 0

    @property
    def downsampled(self) -> int:
        return self.available - self.take

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "available": self.available,
            "fixed": self.fixed,
            "target": self.target,
            "taken": self.take,
            "train": self.train_rows,
            "val": self.val,
            "repeats": self.repeats,
            "short": self.short,
            "downsampled": self.downsampled,
        }


def half_up(x: float) -> int:
    """Round half up (Python's round() rounds half to even, which surprises people reading counts)."""
    return math.floor(x + 0.5)


def val_count(n: int, fraction: float) -> int:
    """Val records out of `n`: the fraction rounded, at least one when there are two or more, never all of them."""
    if n <= 1 or fraction <= 0:
        return 0
    return min(max(half_up(n * fraction), 1), n - 1)


def apportion(total: int, weights: Mapping[Category, float]) -> dict[Category, int]:
    """Split `total` in proportion to `weights` into whole numbers that add up to it (largest remainder).

    Each part is within one of its exact share; ties go to the category whose name sorts first.
    """
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return {c: 0 for c in weights}
    exact = {c: total * w / weight_sum for c, w in weights.items()}
    parts = {c: math.floor(x) for c, x in exact.items()}
    left = total - sum(parts.values())
    by_remainder = sorted(weights, key=lambda c: (-(exact[c] - parts[c]), _sort_key(c)))
    for c in by_remainder[:left]:
        parts[c] += 1
    return parts


def _sort_key(category: Category) -> tuple[int, str]:
    return (0, "") if category is None else (1, category)


def task_targets(
    available: Mapping[Category, int],
    *,
    per_category: int | None,
    category_targets: Mapping[str, int],
    category_shares: Mapping[str, float],
    task_records: int | None,
) -> tuple[dict[Category, int | None], list[str]]:
    """The target (train lines plus val) of every category, and notes for the report.

    Counts (`category_targets`, else `per_category`) and shares (`category_shares`, or equal shares
    when only `task_records` is given) are the two ways to ask; a category no rule names has no
    target under counts (everything is taken) and shares the remaining share under shares.
    """
    notes: list[str] = []
    categories = sorted(set(available) | set(category_targets) | set(category_shares), key=_sort_key)
    for name in sorted(set(category_targets) | set(category_shares)):
        if not available.get(name):
            notes.append(f"category {name!r} has a target but no records to export")
    if category_shares or (task_records and not category_targets and per_category is None):
        shares = _complete_shares(categories, category_shares, notes)
        total = task_records if task_records is not None else _largest_total(available, shares)
        counts = apportion(total, shares)
        return {c: counts[c] for c in categories}, notes
    if category_targets or per_category is not None:
        return {
            c: category_targets.get(c, per_category) if c is not None else per_category for c in categories
        }, notes
    return {c: None for c in categories}, notes


def _complete_shares(
    categories: list[Category], named: Mapping[str, float], notes: list[str]
) -> dict[Category, float]:
    shares: dict[Category, float] = {c: float(named[c]) for c in categories if c in named}
    rest = [c for c in categories if c not in named]
    remainder = 1.0 - sum(shares.values())
    if rest:
        each = remainder / len(rest) if remainder > 1e-9 else 0.0
        for c in rest:
            shares[c] = each
        if each == 0.0:
            notes.append(
                "the named shares add up to 100%, so categories without a share are left out: "
                + ", ".join(_label(c) for c in rest)
            )
    return shares


def _largest_total(available: Mapping[Category, int], shares: Mapping[Category, float]) -> int:
    """The biggest set in which every category with records fills its share without repeating any record."""
    limits = [available[c] / s for c, s in shares.items() if s > 0 and available.get(c)]
    return math.floor(min(limits) + 1e-9) if limits else 0


def plan_pool(
    pool: str,
    available: Mapping[Category, tuple[int, int]],
    targets: Mapping[Category, int | None],
    *,
    val: float,
    upsample: bool,
    max_repeat: int,
) -> list[CategoryPlan]:
    """Take, val and train lines per category: down-sample to the target, and repeat up to it when asked."""
    plans = []
    for category in sorted(set(available) | set(targets), key=_sort_key):
        n, fixed = available.get(category, (0, 0))
        target = targets.get(category)
        take = n if target is None else min(n, target)
        n_val = val_count(take, val)
        train_rows = take - n_val
        if upsample and target is not None and take < target and train_rows > 0:
            train_rows = min(target - n_val, train_rows * max_repeat)
        plans.append(CategoryPlan(pool, category, n, fixed, target, take, n_val, train_rows))
    return plans


def general_rows_wanted(task_rows: int, share: float) -> int:
    """General lines so that they make up `share` of all lines (within half a line)."""
    if share <= 0 or task_rows <= 0:
        return 0
    return half_up(task_rows * share / (1.0 - share))


def plan_general(
    available: Mapping[Category, tuple[int, int]], task_rows: int, *, share: float, val: float
) -> tuple[list[CategoryPlan], int]:
    """The general mix, spread over the general data's categories in proportion to what each has.

    Returns the plans and the number of general lines the share asked for (more than the plans hold
    when there is not enough general data).
    """
    wanted = general_rows_wanted(task_rows, share)
    have = sum(n for n, _ in available.values())
    counts = apportion(min(wanted, have), {c: n for c, (n, _) in available.items()})
    plans = []
    for category in sorted(available, key=_sort_key):
        n, fixed = available[category]
        take = counts[category]
        n_val = val_count(take, val)
        plans.append(CategoryPlan("general", category, n, fixed, None, take, n_val, take - n_val))
    return plans, wanted


def _label(category: Category) -> str:
    return "(no category)" if category is None else category


def check_shares(category_shares: Mapping[str, float]) -> None:
    for name, share in category_shares.items():
        if not 0 <= share <= 1:
            raise WorkbenchError(
                f"the share of category {name!r} is {share}; a share is between 0 and 1 (0.3 = 30%)"
            )
    if sum(category_shares.values()) > 1 + 1e-9:
        total = sum(category_shares.values())
        raise WorkbenchError(f"the category shares add up to {total:.0%}; make them add up to 100% or less")
