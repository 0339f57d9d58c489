"""Hypothesis strategies of fuzz cases: every op, dtype, shape (empty dims included), attr, axis,
min/max shape and value, num_bits, and data with NaN, infinities, subnormals and huge values;
mostly valid cases, often invalid in exactly one way."""

import os

try:
    import hypothesis
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised without hypothesis installed
    hypothesis = None

import numpy as np

from tools.fuzz.model import FLOAT_DTYPES, INT32_MAX, INT32_MIN, NON_FLOAT_DTYPES, WRAPPERS, Case

MISSING_HYPOTHESIS = (
    "tf_qdq fuzz needs the 'hypothesis' package, an optional dependency: "
    "pip install hypothesis  (or, in the checkout, pip install '.[test]')"
)

# Values that stress the arithmetic: signed zeros, NaN, infinities, subnormals
# of every type (float32 1e-45, float64 5e-324, half 6e-8, bfloat16 1e-39),
# extreme magnitudes (1e-282 and 1e73 in float64; they overflow or flush in the
# narrower types), rounding ties and the integer-range boundaries.
SPECIAL_VALUES = (
    0.0,
    -0.0,
    np.nan,
    -np.nan,
    np.inf,
    -np.inf,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    -2.5,
    127.0,
    -128.0,
    255.0,
    0.49999997,
    0.50390625,
    1e-45,
    -1e-45,
    1e-40,
    1e-39,
    5e-324,
    -5e-324,
    6e-8,
    -6e-8,
    1e-282,
    -1e-282,
    1e73,
    -1e73,
    3.4e38,
    -3.4e38,
    1.7e308,
    65504.0,
    -65504.0,
)


def _values(rng, n, dtype, p_special, scale):
    """n values: random normals times `scale`, a fraction replaced by specials."""
    v = rng.standard_normal(n) * scale
    if p_special > 0 and n:
        mask = rng.random(n) < p_special
        v[mask] = rng.choice(np.array(SPECIAL_VALUES), size=int(mask.sum()))
    with np.errstate(over="ignore", invalid="ignore"):
        return v.astype(dtype)


def _require_hypothesis():
    if hypothesis is None:
        raise ImportError(MISSING_HYPOTHESIS)


if hypothesis is not None:

    @st.composite
    def shapes(draw):
        """Rank 0..4, dims 0..6 (empty dims included), rarely one big tensor that
        spans several blocks of the CPU loops."""
        if draw(st.integers(0, 29)) == 0:
            return draw(st.sampled_from([(70000, 3), (3, 70000), (2, 40000, 2), (140001,), (5, 30011)]))
        rank = draw(st.integers(0, 4))
        return tuple(draw(st.lists(st.integers(0, 6) | st.just(1), min_size=rank, max_size=rank)))

    def _axis_choices(op, rank):
        valid = [-1] + list(range(rank))
        invalid = [-2, -100, INT32_MIN, INT32_MAX, rank, rank + 1, 10, 2**31]
        if op == "V3":
            invalid += [-d for d in range(2, rank + 1)]  # aborts TensorFlow
        if op in WRAPPERS:
            valid = [None] + list(range(-rank, rank))
            invalid = [-rank - 1, rank, 10, 2**31, 2**70]
        return valid, invalid

    @st.composite
    def cases(draw, graph_fraction=0.15):
        """A random Case: usually valid, often invalid in one way."""
        op = draw(st.sampled_from(["V2", "V2", "V3", "V4", "V4Grad", "V1", "qdq", "qdq_v2"]))
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        if op in WRAPPERS and draw(st.integers(0, 19)) == 0:
            dtype = draw(st.sampled_from(NON_FLOAT_DTYPES))
        shape = draw(shapes())
        rank = len(shape)
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        p_special = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0]))
        scale = draw(st.sampled_from([1.0, 1.0, 100.0, 1e-3, 1e-40, 1e30, 1e-300, 1e200]))
        n = int(np.prod(shape, dtype=np.int64))
        if dtype in NON_FLOAT_DTYPES:
            x = (rng.standard_normal(n) * 10).astype(dtype).reshape(shape)
        else:
            x = _values(rng, n, dtype, p_special, scale).reshape(shape)
        case = Case(op=op, dtype=dtype, x=x)
        case.graph = draw(st.floats(0, 1)) < graph_fraction

        attrs = case.attrs
        # axis
        if op != "V1":
            valid, invalid = _axis_choices(op, rank)
            if draw(st.integers(0, 9)) < 8:
                axis = draw(st.sampled_from(valid))
            else:
                axis = draw(st.sampled_from(invalid))
            attrs["axis"] = axis
        axis = attrs.get("axis", -1)
        eff_axis = -1 if axis is None else axis
        if op in WRAPPERS and axis is not None and -rank <= axis < 0:
            eff_axis = axis + rank
        depth = shape[eff_axis] if 0 <= eff_axis < rank else None

        # num_bits, signedness, rounding
        if op != "V4Grad":
            signed = draw(st.booleans())
            attrs["signed_input"] = signed
            if draw(st.integers(0, 9)) < 8:
                num_bits = draw(
                    st.sampled_from([1, 2, 3, 4, 7, 8, 8, 8, 16, 23, 24, 32, 52, 53, 60, 61] + ([] if signed else [62]))
                )
            else:
                num_bits = draw(
                    st.sampled_from([0, -1, 62, 63, 64, 2**30, INT32_MIN, INT32_MAX] + ([2**31] if op != "V3" else []))
                )
            if op == "V3":
                nb_shape = draw(st.sampled_from([(), (), (), (), (0,), (2,), (1,), (1, 1)]))
                case.num_bits_tensor = np.full(nb_shape, num_bits, np.int32)
            else:
                attrs["num_bits"] = num_bits
            attrs["range_given"] = draw(st.booleans())
            if op != "V1":
                attrs["narrow_range"] = draw(st.booleans())
            if op in ("V2", "V4") or op in WRAPPERS:
                attrs["round_mode"] = draw(st.sampled_from(["HALF_TO_EVEN", "HALF_UP"]))

        # the range: V1 from float attrs, the others from tensors
        mm_dtype = dtype if dtype in FLOAT_DTYPES else np.float32

        def pair(k):
            style = draw(st.sampled_from(["sorted", "sorted", "sorted", "raw", "equal", "special"]))
            if style == "special":
                a = np.array([draw(st.sampled_from(SPECIAL_VALUES)) for _ in range(k)])
                b = np.array([draw(st.sampled_from(SPECIAL_VALUES)) for _ in range(k)])
                if draw(st.booleans()):
                    with np.errstate(invalid="ignore"):
                        a, b = np.fmin(a, b), np.fmax(a, b)
            else:
                a = rng.standard_normal(k) * scale
                b = rng.standard_normal(k) * scale
                if style == "sorted":
                    a, b = np.minimum(a, b), np.maximum(a, b)
                elif style == "equal":
                    b = a.copy()
            with np.errstate(over="ignore", invalid="ignore"):
                return a, b

        if op == "V1":
            a, b = pair(1)
            attrs["input_min"], attrs["input_max"] = float(a[0]), float(b[0])
        else:
            good = () if eff_axis == -1 or depth is None else (depth,)
            if draw(st.integers(0, 9)) < 8:
                mn_shape = mx_shape = good
            else:
                wrong = [(), (0,), (1,), (2,), (12,), (1, 1), ((depth or 0) + 1,), (1, depth or 1)]
                mn_shape = draw(st.sampled_from(wrong))
                mx_shape = mn_shape if draw(st.booleans()) else draw(st.sampled_from(wrong + [good]))
            k = max(int(np.prod(mn_shape, dtype=np.int64)), int(np.prod(mx_shape, dtype=np.int64)))
            a, b = pair(k)
            with np.errstate(over="ignore", invalid="ignore"):
                case.mn = a[: int(np.prod(mn_shape, dtype=np.int64))].astype(mm_dtype).reshape(mn_shape)
                case.mx = b[: int(np.prod(mx_shape, dtype=np.int64))].astype(mm_dtype).reshape(mx_shape)
            if op in WRAPPERS and draw(st.integers(0, 19)) == 0:
                case.minmax_as_tensor_dtype = draw(st.sampled_from(FLOAT_DTYPES))
        if op == "V4Grad":
            g_shape = shape if draw(st.integers(0, 9)) < 9 else draw(shapes())
            gn = int(np.prod(g_shape, dtype=np.int64))
            case.grads = _values(rng, gn, dtype, p_special, 1.0).reshape(g_shape)
        return case

else:

    def shapes():
        """Needs hypothesis."""
        _require_hypothesis()

    def cases(graph_fraction=0.15):
        """Needs hypothesis."""
        _require_hypothesis()


def quick_settings(max_examples=1000):
    """The profile of the normal test suite (1000 cases, ~15-30 s on 2 cores).

    Random cases on every run (new inputs each time), except where the environment
    variable CI is set: there the same cases every time, so a result never depends on luck. The
    long profile (`python -m tools.fuzz`) is where new inputs are explored."""
    _require_hypothesis()
    derandomize = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
