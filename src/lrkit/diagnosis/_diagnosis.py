"""``diagnose``: turn a loss curve (and optional validation loss, lr, gradient norm) into a
:class:`~lrkit.diagnosis.Diagnosis`.

Steps count optimizer updates from 0 (``steps`` defaults to ``0..n-1``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrkit._validate import check_int, fail
from lrkit.diagnosis._findings import Action, Diagnosis, Finding
from lrkit.diagnosis._rules import Curve, Thresholds, detect_all, slow_progress
from lrkit.diagnosis._stats import bin_means, rolling_median

__all__ = ["diagnose", "diagnose_curve"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


def _as_array(name: str, values: object, *, allow_none: bool = True) -> FloatArray:
    if isinstance(values, (str, bytes, Mapping)):
        fail(name, values, "a 1-D sequence or array of numbers")
    try:
        if isinstance(values, (list, tuple)) and allow_none:
            values = [math.nan if v is None else v for v in values]
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        fail(name, _short(values), "a 1-D sequence or array of numbers")
    if arr.ndim != 1:
        fail(name, f"<array of shape {arr.shape}>", "a 1-D sequence or array of numbers")
    return arr


def _short(values: object) -> object:
    text = repr(values)
    return values if len(text) <= 80 else text[:77] + "..."


def _as_steps(name: str, values: object, length: int, of: str) -> FloatArray:
    arr = _as_array(name, values, allow_none=False)
    if arr.size != length:
        fail(name, f"<{arr.size} values>", f"as long as {of} ({length} values)")
    if arr.size and not (math.isfinite(arr[0]) and math.isfinite(arr[-1])):
        fail(name, _short(values), "finite numbers")
    if arr.size > 1:
        increasing = np.greater(arr[1:], arr[:-1])
        if not increasing.all():
            bad = int(np.argmin(increasing)) + 1
            fail(
                name,
                f"<... {arr[bad - 1]:g}, {arr[bad]:g} ... at index {bad}>",
                "strictly increasing finite numbers",
            )
    return arr


def _first_nonfinite(arr: FloatArray) -> int | None:
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    return int(np.argmax(bad))


def _lr_at(lr: FloatArray | None, index: int) -> float | None:
    if lr is None or lr.size == 0:
        return None
    value = float(lr[min(max(index, 0), lr.size - 1)])
    return value if math.isfinite(value) else None


def _scale_text(factor: float, lr_now: float | None) -> str:
    inverse = 1.0 / factor if factor > 0 else math.inf
    if factor < 1 and abs(inverse - round(inverse)) < 1e-4 and round(inverse) % 10 != 0:
        shown = f"1/{round(inverse)}"  # 1/3 rather than 0.333333
    else:
        shown = f"{factor:g}"
    text = f"multiply the learning rate by {shown}"
    if lr_now is not None:
        text += f" (from {lr_now:.3g} to {lr_now * factor:.3g})"
    return text


def _action_for(
    finding: Finding, steps: FloatArray, lr: FloatArray | None, index_of: dict[int, int]
) -> Action:
    kind = finding.kind
    onset = finding.onset_step
    lr_now = _lr_at(lr, index_of.get(onset, 0) if onset is not None else 0)
    if kind == "diverged":
        before = int(finding.statistics.get("last_finite_step", onset or 0))
        params: dict[str, Any] = {"before_step": before, "skip_batches": 0, "lr_factor": 0.1}
        text = (
            f"roll back to a checkpoint from before step {before} and "
            + _scale_text(0.1, lr_now)
            + "; if it repeats, lower it further or tighten gradient clipping"
        )
        return Action("rollback", text, finding.message, params)
    if kind == "diverging":
        return Action(
            "scale_lr",
            _scale_text(0.1, lr_now)
            + (f" and restart from before step {onset}" if onset is not None else ""),
            finding.message,
            {"factor": 0.1, "restart_before_step": onset},
        )
    if kind == "spiking":
        end = finding.end_step if finding.end_step is not None else onset
        skip = max(1, int((end or 0) - (onset or 0) + 1))
        return Action(
            "rollback",
            f"roll back to before step {onset} and skip the {skip} batch(es) from step {onset} "
            "on; if spikes recur, lower the learning rate or clip gradients",
            finding.message,
            {"before_step": onset, "skip_batches": skip, "skip_from_step": onset},
        )
    if kind == "oscillating":
        return Action(
            "scale_lr", _scale_text(1 / 3, lr_now), finding.message, {"factor": round(1 / 3, 6)}
        )
    if kind == "overfitting":
        at = finding.onset_step
        return Action(
            "early_stop",
            f"keep the checkpoint from step {at} (best validation loss) and stop there, or add "
            "regularisation / more data; a lower final learning rate can also help",
            finding.message,
            {"at_step": at},
        )
    if kind == "too_slow":
        return Action("scale_lr", _scale_text(3.0, lr_now), finding.message, {"factor": 3.0})
    # plateau
    return Action(
        "scale_lr",
        _scale_text(10.0, lr_now) + " (or check the data, the labels and the loss)",
        finding.message,
        {"factor": 10.0},
    )


def diagnose(
    train_loss: ArrayLike,
    *,
    val_loss: ArrayLike | None = None,
    steps: ArrayLike | None = None,
    val_steps: ArrayLike | None = None,
    lr: ArrayLike | float | None = None,
    grad_norm: ArrayLike | None = None,
    min_points: int | None = None,
    thresholds: Thresholds | None = None,
) -> Diagnosis:
    """Diagnose a training run from its loss curve.

    Args:
        train_loss: training loss per logged step (list or array; NaN/inf/None allowed and
            reported as "diverged").
        val_loss: validation loss per evaluation (optional).
        steps: the optimizer step of each ``train_loss`` value, strictly increasing (default
            ``0..n-1``).
        val_steps: the step of each ``val_loss`` value (uneven spacing allowed). Default:
            evaluations spread evenly, the last at the last training step.
        lr: the learning rate (a number, or one value per ``train_loss`` value); used in
            the recommended action.
        grad_norm: gradient norm per ``train_loss`` value (optional); a jump in it (or a
            non-finite value) supports a spike. Only a non-finite *loss* means "diverged".
        min_points: fewer finite points give "inconclusive" (default 20).
        thresholds: detector thresholds (default :class:`Thresholds`).

    Returns:
        A :class:`Diagnosis`. ``verdict`` is "healthy", a problem kind, or "inconclusive"
        (not enough evidence: fewer than ``min_points`` finite points).

    Example:
        >>> import numpy as np
        >>> steps = np.arange(500)
        >>> loss = 2.0 * np.exp(-steps / 80) + 0.1 + 0.01 * np.sin(steps)
        >>> diagnose(loss).verdict
        'healthy'
        >>> loss[300] = float("nan")
        >>> d = diagnose(loss, lr=0.1)
        >>> d.verdict, d.findings[0].onset_step, d.action.kind
        ('diverged', 300, 'rollback')
    """
    return diagnose_curve(
        train_loss,
        val_loss=val_loss,
        steps=steps,
        val_steps=val_steps,
        lr=lr,
        grad_norm=grad_norm,
        min_points=min_points,
        thresholds=thresholds,
    )


def diagnose_curve(
    train_loss: ArrayLike,
    *,
    val_loss: ArrayLike | None = None,
    steps: ArrayLike | None = None,
    val_steps: ArrayLike | None = None,
    lr: ArrayLike | float | None = None,
    grad_norm: ArrayLike | None = None,
    min_points: int | None = None,
    thresholds: Thresholds | None = None,
    peaks: ArrayLike | None = None,
    detections: list[Any] | None = None,
) -> Diagnosis:
    """:func:`diagnose`, plus what a live :class:`~lrkit.diagnosis.LossMonitor` knows: the
    maximum behind each (binned) point (``peaks``) and its own ``detections`` (used as the
    spikes and jumps instead of a replay of the curve)."""
    th = thresholds if thresholds is not None else Thresholds()
    if not isinstance(th, Thresholds):
        fail("thresholds", thresholds, "a lrkit.diagnosis.Thresholds")
    if min_points is not None:
        th = th.replace(min_points=check_int("min_points", min_points, minimum=3))
    y_all = _as_array("train_loss", train_loss)
    n = int(y_all.size)
    if n == 0:
        fail("train_loss", "<empty>", "a non-empty sequence of losses")
    x_all = (
        np.arange(n, dtype=np.float64)
        if steps is None
        else _as_steps("steps", steps, n, "train_loss")
    )
    lr_arr: FloatArray | None = None
    if lr is not None:
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            lr_arr = np.full(1, float(lr))
        else:
            lr_arr = _as_array("lr", lr)
            if lr_arr.size != n:
                fail("lr", f"<{lr_arr.size} values>", f"a number or as long as train_loss ({n})")
    g_arr: FloatArray | None = None
    if grad_norm is not None:
        g_arr = _as_array("grad_norm", grad_norm)
        if g_arr.size != n:
            fail("grad_norm", f"<{g_arr.size} values>", f"as long as train_loss ({n} values)")
    pk: FloatArray | None = None
    if peaks is not None:
        pk = _as_array("peaks", peaks)
        if pk.size != n:
            fail("peaks", f"<{pk.size} values>", f"as long as train_loss ({n} values)")
        pk = np.maximum(pk, y_all)
    vy: FloatArray | None = None
    vx: FloatArray | None = None
    if val_loss is not None:
        vy = _as_array("val_loss", val_loss)
        if val_steps is None:
            m = vy.size
            span = x_all[-1] - x_all[0]
            vx = x_all[0] + span * np.arange(1, m + 1, dtype=np.float64) / max(m, 1)
        else:
            vx = _as_steps("val_steps", val_steps, int(vy.size), "val_loss")
        keep = np.isfinite(vy)
        vx, vy = vx[keep], vy[keep]
    elif val_steps is not None:
        fail("val_steps", _short(val_steps), "given only together with val_loss")

    findings: list[Finding] = []
    first_bad = _first_nonfinite(y_all)
    if first_bad is not None:
        last_finite = int(x_all[first_bad - 1]) if first_bad > 0 else int(x_all[0])
        count = int(np.count_nonzero(~np.isfinite(y_all)))
        findings.append(
            Finding(
                "diverged",
                "critical",
                int(x_all[first_bad]),
                f"the loss became {float(y_all[first_bad])} at step {int(x_all[first_bad])}",
                {
                    "first_nonfinite_step": int(x_all[first_bad]),
                    "last_finite_step": last_finite,
                    "nonfinite_points": count,
                },
            )
        )
    # analyse the finite prefix (before the first non-finite value)
    stop = n if first_bad is None else first_bad
    xs, ys = x_all[:stop], y_all[:stop]
    summary: dict[str, Any] = {"points": n, "finite_points_analysed": int(stop)}
    binned = stop > th.max_points
    if binned:
        means, edges = bin_means(ys, th.max_points)
        cx = xs[edges[:-1]]
        width = np.diff(np.append(xs[edges[:-1]], xs[-1] + 1)).astype(np.float64)
        cy = means
        cpeak = np.maximum.reduceat(ys if pk is None else pk[:stop], edges[:-1])
        clr = lr_arr[edges[:-1]] if lr_arr is not None and lr_arr.size == n else lr_arr
        cg = None
        if g_arr is not None:
            gmax = np.maximum.reduceat(
                np.where(np.isnan(g_arr[:stop]), np.inf, g_arr[:stop]), edges[:-1]
            )
            cg = gmax
    else:
        cx, cy = xs, ys
        cpeak = ys if pk is None else pk[:stop]
        width = np.ones(cx.size)
        clr = lr_arr[:stop] if lr_arr is not None and lr_arr.size == n else lr_arr
        cg = None if g_arr is None else np.where(np.isnan(g_arr[:stop]), np.inf, g_arr[:stop])
    summary["binned_to"] = int(cx.size) if binned else None
    index_of = {int(v): i for i, v in enumerate(cx[:: max(1, cx.size // 4096)])}
    reason = ""
    verdict = "healthy"
    smoothed = np.full(cx.size, np.nan)
    too_noisy = ""
    if cy.size >= th.min_points:
        curve = Curve(cx, cy, width, vx, vy, clr, cg, cpeak, detections)
        more, s, prog = detect_all(curve, th)
        findings.extend(more)
        smoothed = s.base
        still_falling = s.trend_half.p < th.alpha and s.trend_half.z < 0
        if cy.size < th.settle_points and still_falling and slow_progress(s, th):
            too_noisy = (
                f"not enough evidence: after only {cy.size} points the loss is still falling "
                f"(Mann-Kendall z={s.trend_half.z:.2f} over the second half): too early to tell "
                "a low learning rate from the early phase of a healthy run"
            )
        elif s.fall < th.evidence_z * s.se_diff:
            scale = "on a log scale " if s.log_scale else ""
            too_noisy = (
                f"not enough evidence: between the first and the last tenth the loss changed by "
                f"{-s.fall:+.3g} {scale}with a standard error of {s.se_diff:.3g} (point-to-point "
                f"noise {s.sigma:.3g} over {cy.size} points): log more steps, then diagnose again"
            )
        summary.update(
            {
                "start_loss": s.start,
                "end_loss": s.end,
                "best_loss": s.best,
                "best_step": int(cx[s.best_index]),
                "relative_noise_last_half": s.noise_end,
                "mann_kendall_z": s.trend.z,
                "mann_kendall_p": s.trend.p,
                "variance_inflation": s.trend.variance_inflation,
                "smoothing_window": s.window,
                "noise_sigma": s.sigma,
                "level_change": -s.fall,
                "level_change_se": s.se_diff,
                "progress": prog.as_dict(),
            }
        )
    elif cy.size >= 3:
        smoothed = rolling_median(cy, 3)
    if findings:
        top = findings[0]
        verdict = top.kind
        reason = top.message
        action = _action_for(top, cx, clr, index_of)
    elif too_noisy:
        verdict = "inconclusive"
        reason = too_noisy
        action = Action("collect_more", "log more steps, then diagnose again", reason, {})
    elif cy.size < th.min_points:
        verdict = "inconclusive"
        reason = (
            f"not enough evidence: {cy.size} finite point(s), at least {th.min_points} needed "
            "to tell noise from trend"
        )
        action = Action("collect_more", "log more steps, then diagnose again", reason, {})
    else:
        reason = (
            "converged: the loss fell and settled, without spikes or divergence; keep the "
            "learning rate"
        )
        action = Action("none", "keep the learning rate", reason, {})
    logger.info("diagnose: verdict %s (%s)", verdict, reason)
    return Diagnosis(
        verdict=verdict,
        findings=tuple(findings),
        action=action,
        reason=reason,
        statistics=summary,
        steps=cx,
        train_loss=cy,
        smoothed=smoothed,
        val_steps=vx,
        val_loss=vy,
    )
