"""Argument checks shared by every wrapper. Each error names the argument it is about."""
import math
import numbers

import torch


def check_tensor(value, name, *, dtypes=None, ndims=None):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(value).__name__}")
    if dtypes is not None and value.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"'{name}' must have dtype {allowed}; got {str(value.dtype).replace('torch.', '')}")
    if ndims is not None and value.dim() not in ndims:
        wanted = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"'{name}' must be {wanted}, got shape {tuple(value.shape)}")
    return value


FLOATS = (torch.float32, torch.float64)
INTEGERS = (torch.int32, torch.int64)


def check_float(value, name, ndims=None):
    return check_tensor(value, name, dtypes=FLOATS, ndims=ndims)


def check_same_device(value, name, ref, ref_name):
    if value.device != ref.device:
        raise ValueError(f"'{name}' is on {value.device} but '{ref_name}' is on {ref.device}")


def check_int(value, name, *, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"'{name}' must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"'{name}' must be <= {maximum}, got {value}")
    return int(value)


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"'{name}' must be a finite number, got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"'{name}' must lie in {lo}{low}, {high}{hi}, got {value}")
    return float(value)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"'{name}' must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value

