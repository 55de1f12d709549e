"""Search spaces from ``submission.yaml`` as Optuna distributions."""

from __future__ import annotations

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from medarena.submissions import CategoricalParam, FloatParam, IntParam, SearchParam


def to_distribution(param: SearchParam) -> BaseDistribution:
    """The Optuna distribution of one search-space entry."""
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(param.choices)
    raise TypeError(f"unsupported search parameter {param!r}")


def to_distributions(space: dict[str, SearchParam]) -> dict[str, BaseDistribution]:
    return {name: to_distribution(param) for name, param in space.items()}
