"""Conditional flow matching in four small parts, each usable alone (the ideas of torchcfm and Meta's
flow_matching, written for this project):

    path.py      a probability path: where a training point sits at time t, and its target velocity; the
                 distribution of training times
    coupling.py  minibatch optimal-transport pairing of noise with data
    guidance.py  classifier-free guidance: condition dropout in training, the guided velocity in sampling
    solver.py    fixed-step ODE solvers (Euler, RK4) for any velocity callable v(x, t)

`synthinv.models.flow.FlowModel` composes them with an encoder and a vector field.
"""

from synthinv.flow.coupling import ot_pair_noise
from synthinv.flow.guidance import drop_condition, guided
from synthinv.flow.path import (
    TIME_DISTRIBUTIONS,
    PathSample,
    ProbabilityPath,
    RectifiedPath,
    TimeDistribution,
    sample_times,
)
from synthinv.flow.solver import SOLVERS, Velocity, euler_step, rk4_step, solve

__all__ = ["PathSample", "ProbabilityPath", "RectifiedPath", "TIME_DISTRIBUTIONS", "TimeDistribution", "sample_times",
           "ot_pair_noise", "drop_condition", "guided", "SOLVERS",
           "Velocity", "euler_step", "rk4_step", "solve"]
