#!/usr/bin/env python3
"""Time EBFlow training steps in PyTorch for ebflow-bench, over the peer protocol.

The process reads JSON requests, one per line, from standard input and writes JSON responses,
one per line, to standard output (protocol 1, described in PROTOCOL.md next to this file). Logs
and tracebacks go to standard error only.

One training step, timed as a whole with a wall clock:
  1. Preprocess a fixed batch of synthetic 8-bit images without gradient: uniform dequantisation,
     division by 256, the shift (y + 1e-6)(1 - 2e-6), and the logit divided by the logit scale.
  2. Compute the objective (ml, sml, ssm, dsm or fdssm) with the loss scaling of the EBFlow
     reference code (Chao et al., NeurIPS 2023), with NaN entries of the per-sample loss set to 0
     and counted.
  3. Back-propagate, clip the gradient norm if requested, take an RMSprop step
     (alpha 0.99, eps 1e-8 added after the square root) and update the EMA shadow weights.

Models:
  fc   L dense D x D layers (W = -I, b = 1 at start), a smooth leaky ReLU between consecutive ones.
  cnn  3 blocks of 2 channel-preserving 7 x 7 convolutions (W = -Dirac, tiny random bias), a
       residual smooth leaky ReLU after every convolution but the last, a 2 x 2 squeeze
       (space-to-depth, channel 4c + 2dh + dw) after every block but the last.

Run it with Debian's PyTorch on OpenBLAS:
    sudo apt-get install python3-torch libopenblas0-openmp
    /usr/bin/python3 benchmarks/peers/pytorch_peer.py
"""
import ctypes
import json
import math
import os
import platform
import sys
import time
import traceback

import torch
import torch.nn.functional as F

PROTOCOL_VERSION = 1
ENGINE_NAME = "pytorch"
OBJECTIVES = ("ml", "sml", "ssm", "dsm", "fdssm")
ARCHITECTURES = ("fc", "cnn")

SLR_ALPHA = 0.3              # smooth leaky ReLU: f(h) = 0.3 h + 0.7 softplus(h) [+ h]
PIXEL_LEVELS = 256.0         # 8-bit images
LOGIT_SHIFT = 1e-6           # keeps the logit argument inside (1e-6, 1 - 1e-6)
NEWTON_STEPS = 100           # the SLR inverse runs a fixed number of Newton steps
NEWTON_MIN_SLOPE = 0.01      # floor on f'(x) in the Newton update
LOG_TWO_PI = math.log(2.0 * math.pi)
CNN_BLOCKS = 3
CNN_CONVS_PER_BLOCK = 2
CNN_KERNEL = 7
CNN_BIAS_GAIN = 0.01         # bias std = 0.01 * sqrt(2 / (fan_in + fan_out))
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 1e-8

# Hyper-parameters of the MNIST configurations of the reference code, used when a request
# leaves them out. Only their values, never their cost, differ between data sets.
DEFAULT_HYPER = {
    "fc": {"learningRate": 1e-4, "weightDecay": 0.0, "gradientClip": None, "emaDecay": 0.999,
           "sigma": 1.0, "epsilon": 1.0, "energyWeight": 0.0, "slices": 1,
           "logitScale": 0.5, "residual": False},
    "cnn": {"learningRate": 1e-4, "weightDecay": 0.0, "gradientClip": None, "emaDecay": 0.999,
            "sigma": 0.1, "epsilon": 0.1, "energyWeight": 0.0, "slices": 1,
            "logitScale": 0.75, "residual": True},
}


class RequestError(Exception):
    """A request that this peer cannot run; its message goes back in an `error` response."""


# ------------------------------------------------------------------------------------------
# BLAS: report which library PyTorch uses and give OpenBLAS the requested thread count.

def find_openblas():
    """Return (ctypes library, path) of the OpenBLAS loaded into this process, or (None, None)."""
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # loads the BLAS if it is loaded lazily
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line}
    except OSError:
        return None, None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
            library.openblas_get_config.restype = ctypes.c_char_p
            library.openblas_set_num_threads.argtypes = [ctypes.c_int]
            return library, path
        except (OSError, AttributeError):
            continue
    return None, None


def describe_openmp_wait():
    """Return the OpenMP wait settings of this process, e.g. "GOMP_SPINCOUNT=1000", or None when unset."""
    settings = [f"{name}={os.environ[name]}" for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if name in os.environ]
    return " ".join(settings) or None


def describe_blas(openblas):
    """Return a one-line description of the BLAS library, or None when it is not known."""
    if openblas is not None:
        return openblas.openblas_get_config().decode()
    for line in torch.__config__.show().splitlines():
        if "BLAS_INFO" in line:
            return line.strip()
    return None


def set_threads(count, openblas):
    """Set the intra-op threads of PyTorch (OpenMP, oneDNN) and of OpenBLAS to `count`."""
    torch.set_num_threads(count)
    if openblas is not None:
        openblas.openblas_set_num_threads(count)


# ------------------------------------------------------------------------------------------
# The smooth leaky ReLU, the only non-linear layer of both models.

def smooth_leaky_relu(h, residual):
    """Return (f(h), log f'(h)) elementwise; residual adds h to f and 1 to f'."""
    output = SLR_ALPHA * h + (1.0 - SLR_ALPHA) * F.softplus(h)
    derivative = SLR_ALPHA + (1.0 - SLR_ALPHA) * torch.sigmoid(h)
    if residual:
        output = output + h
        derivative = derivative + 1.0
    return output, torch.log(derivative)


def invert_smooth_leaky_relu(y, residual):
    """Solve f(x) = y with NEWTON_STEPS Newton steps from x = y (no convergence test)."""
    x = y.clone()
    for _ in range(NEWTON_STEPS):
        value, log_derivative = smooth_leaky_relu(x, residual)
        slope = torch.clamp(torch.exp(log_derivative), min=NEWTON_MIN_SLOPE)
        x = x - (value - y) / slope
    return x


def standard_normal_log_density(z):
    """Return log N(z; 0, I) per row of the (B, D) tensor z."""
    return -0.5 * (z * z).sum(dim=1) - 0.5 * z.shape[1] * LOG_TWO_PI


# ------------------------------------------------------------------------------------------
# Models. energy(x) is E(x) = -[log N(g(x)) + sum of SLR log-derivatives] per sample; the
# log-determinants of the linear layers are left out of E and returned by linear_log_det().

class DenseFlow(torch.nn.Module):
    """L dense D x D layers with a smooth leaky ReLU between consecutive ones.

    Cost per batch of B rows: energy O(B D^2 L), linear_log_det O(D^3 L), sample O(D^3 L).
    """

    def __init__(self, dim, depth, residual):
        super().__init__()
        self.residual = residual
        self.weight = torch.nn.ParameterList(
            torch.nn.Parameter(-torch.eye(dim)) for _ in range(depth))
        self.bias = torch.nn.ParameterList(
            torch.nn.Parameter(torch.ones(dim)) for _ in range(depth))

    def energy(self, x):
        h = x.reshape(x.shape[0], -1)
        log_derivative_sum = h.new_zeros(h.shape[0])
        last = len(self.weight) - 1
        for index in range(len(self.weight)):
            h = F.linear(h, self.weight[index], self.bias[index])
            if index < last:
                h, log_derivative = smooth_leaky_relu(h, self.residual)
                log_derivative_sum = log_derivative_sum + log_derivative.sum(dim=1)
        return -(standard_normal_log_density(h) + log_derivative_sum)

    def linear_log_det(self):
        return sum(torch.linalg.slogdet(weight).logabsdet for weight in self.weight)

    @torch.no_grad()
    def sample(self, count, generator):
        dim = self.weight[0].shape[0]
        y = torch.randn(count, dim, generator=generator)
        last = len(self.weight) - 1
        for index in range(last, -1, -1):
            if index < last:
                y = invert_smooth_leaky_relu(y, self.residual)
            # Rows are samples, so W x = y - b for every row is x^T = (y - b)^T W^{-T}.
            y = torch.linalg.solve(self.weight[index], (y - self.bias[index]).T).T
        return y


class ConvLayout:
    """Shape of one convolution's input and the scatter indices of its D x D Toeplitz matrix."""

    def __init__(self, channels, height, width):
        self.channels, self.height, self.width = channels, height, width
        self.dim = channels * height * width
        self._positions = None

    def toeplitz_positions(self):
        """Return (flat positions in the D x D matrix, flat indices into the weight tensor).

        For output (o, r, q), tap (i, j) and input channel c, the matrix entry at row
        o*H*W + r*W + q and column c*H*W + (r+i-p)*W + (q+j-p) is W[o, c, i, j] whenever the
        input position lies inside the image (zero padding p = (K-1)/2). Built once per layer.
        """
        if self._positions is not None:
            return self._positions
        c_count, height, width = self.channels, self.height, self.width
        pad = CNN_KERNEL // 2
        out_channel = torch.arange(c_count).view(-1, 1, 1, 1)
        in_channel = torch.arange(c_count).view(1, -1, 1, 1)
        matrix_positions, weight_positions = [], []
        for i in range(CNN_KERNEL):
            for j in range(CNN_KERNEL):
                row_start, row_stop = max(0, pad - i), min(height, height + pad - i)
                col_start, col_stop = max(0, pad - j), min(width, width + pad - j)
                if row_start >= row_stop or col_start >= col_stop:
                    continue  # this tap only ever reads padding
                rows = torch.arange(row_start, row_stop)
                cols = torch.arange(col_start, col_stop)
                r = rows.view(1, 1, -1, 1)
                q = cols.view(1, 1, 1, -1)
                matrix_row = out_channel * height * width + r * width + q
                matrix_col = in_channel * height * width + (r + i - pad) * width + (q + j - pad)
                flat = (matrix_row * self.dim + matrix_col).reshape(-1)
                tap = (out_channel * c_count + in_channel) * CNN_KERNEL * CNN_KERNEL + i * CNN_KERNEL + j
                matrix_positions.append(flat)
                weight_positions.append(tap.expand(-1, -1, rows.numel(), cols.numel()).reshape(-1))
        self._positions = (torch.cat(matrix_positions), torch.cat(weight_positions))
        return self._positions


class ConvFlow(torch.nn.Module):
    """Three blocks of two channel-preserving 7 x 7 convolutions with residual SLRs and squeezes.

    Cost per batch of B rows: energy O(B D C K^2) summed over the layers. linear_log_det and
    sample cost O(D^3) per convolution, because they use its dense D x D Toeplitz matrix.
    """

    def __init__(self, channels, height, width, generator):
        super().__init__()
        self.layouts = []
        weights, biases = [], []
        for block in range(CNN_BLOCKS):
            for _ in range(CNN_CONVS_PER_BLOCK):
                self.layouts.append(ConvLayout(channels, height, width))
                kernel = torch.zeros(channels, channels, CNN_KERNEL, CNN_KERNEL)
                centre = CNN_KERNEL // 2
                kernel[torch.arange(channels), torch.arange(channels), centre, centre] = -1.0
                fan = channels * CNN_KERNEL * CNN_KERNEL
                bias_std = CNN_BIAS_GAIN * math.sqrt(2.0 / (fan + fan))
                weights.append(torch.nn.Parameter(kernel))
                biases.append(torch.nn.Parameter(bias_std * torch.randn(channels, generator=generator)))
            if block < CNN_BLOCKS - 1:
                channels, height, width = 4 * channels, height // 2, width // 2
        self.weight = torch.nn.ParameterList(weights)
        self.bias = torch.nn.ParameterList(biases)
        self.output_shape = (channels, height, width)

    def _is_last_of_block(self, index):
        return (index + 1) % CNN_CONVS_PER_BLOCK == 0

    def energy(self, x):
        h = x
        log_derivative_sum = h.new_zeros(h.shape[0])
        last = len(self.weight) - 1
        for index in range(len(self.weight)):
            h = F.conv2d(h, self.weight[index], self.bias[index], padding=CNN_KERNEL // 2)
            if index == last:
                break
            h, log_derivative = smooth_leaky_relu(h, residual=True)
            log_derivative_sum = log_derivative_sum + log_derivative.flatten(1).sum(dim=1)
            if self._is_last_of_block(index):
                h = F.pixel_unshuffle(h, 2)
        return -(standard_normal_log_density(h.flatten(1)) + log_derivative_sum)

    def toeplitz(self, index):
        """Return the D x D matrix T with conv(x) = T vec(x) + bias, differentiable in the weight."""
        layout = self.layouts[index]
        matrix_positions, weight_positions = layout.toeplitz_positions()
        values = self.weight[index].reshape(-1)[weight_positions]
        flat = values.new_zeros(layout.dim * layout.dim).index_put((matrix_positions,), values)
        return flat.view(layout.dim, layout.dim)

    def linear_log_det(self):
        return sum(torch.linalg.slogdet(self.toeplitz(index)).logabsdet
                   for index in range(len(self.weight)))

    @torch.no_grad()
    def sample(self, count, generator):
        y = torch.randn(count, *self.output_shape, generator=generator)
        last = len(self.weight) - 1
        for index in range(last, -1, -1):
            if index < last:
                if self._is_last_of_block(index):
                    y = F.pixel_shuffle(y, 2)
                y = invert_smooth_leaky_relu(y, residual=True)
            layout = self.layouts[index]
            shifted = (y - self.bias[index].view(1, -1, 1, 1)).reshape(count, layout.dim)
            solved = torch.linalg.solve(self.toeplitz(index), shifted.T).T
            y = solved.reshape(count, layout.channels, layout.height, layout.width)
        return y


# ------------------------------------------------------------------------------------------
# Preprocessing and objectives. x is the preprocessed batch in NCHW layout; every objective
# returns (scalar loss, number of NaN entries zeroed in its per-sample loss).

def preprocess(pixels, logit_scale, generator):
    """Map 8-bit pixel values to logit space: dequantise, /256, shift, logit / logit_scale."""
    y = (pixels + torch.rand(pixels.shape, generator=generator)) / PIXEL_LEVELS
    y = (y + LOGIT_SHIFT) * (1.0 - 2.0 * LOGIT_SHIFT)
    return (torch.log(y) - torch.log1p(-y)) / logit_scale


def zero_nans(per_sample):
    """Return the tensor with NaN entries set to 0, and how many there were."""
    nan_mask = torch.isnan(per_sample)
    count = int(nan_mask.sum())
    if count == 0:
        return per_sample, 0
    return torch.where(nan_mask, torch.zeros_like(per_sample), per_sample), count


def objective_ml(model, x, hyper, generator):
    """-log p(x) averaged over the batch, with the linear log-dets (not divided by D)."""
    energy, nan_count = zero_nans(model.energy(x))
    return energy.mean() - model.linear_log_det(), nan_count


def objective_sml(model, x, hyper, generator):
    """E(x) - E(x_model) with exact model samples drawn by the inverse, divided by 2B."""
    batch = x.shape[0]
    model_samples = model.sample(batch, generator).reshape(x.shape)
    energy, nan_count = zero_nans(model.energy(torch.cat([x, model_samples])))
    return (energy[:batch].sum() - energy[batch:].sum()) / (2 * batch), nan_count


def objective_ssm(model, x, hyper, generator):
    """Sliced score matching with Rademacher slices: (1/(k^2 B D)) sum [|s|^2/2 + v.Hv] + lambda/(kC) mean E."""
    batch, channels = x.shape[0], x.shape[1]
    dim = x[0].numel()
    slices = hyper["slices"]
    rows = x.repeat(slices, *([1] * (x.dim() - 1))).detach().requires_grad_(True)
    direction = torch.randn(rows.shape, generator=generator).sign()
    energy = model.energy(rows)
    score = torch.autograd.grad(-energy.sum(), rows, create_graph=True)[0]
    hessian_direction = torch.autograd.grad((score * direction).sum(), rows, create_graph=True)[0]
    per_row = 0.5 * (score * score).flatten(1).sum(1) + (direction * hessian_direction).flatten(1).sum(1)
    per_row, nan_count = zero_nans(per_row)
    loss = per_row.sum() / (slices * slices * batch * dim)
    if hyper["energyWeight"] != 0:
        loss = loss + hyper["energyWeight"] / (slices * channels) * energy.mean()
    return loss, nan_count


def objective_dsm(model, x, hyper, generator):
    """Denoising score matching at sigma: (1/(B D)) sum |s(x~) + n/sigma|^2/2 + lambda/C mean E(x~)."""
    batch, channels = x.shape[0], x.shape[1]
    dim = x[0].numel()
    sigma = hyper["sigma"]
    noise = torch.randn(x.shape, generator=generator)
    noisy = (x + sigma * noise).requires_grad_(True)
    energy = model.energy(noisy)
    score = torch.autograd.grad(-energy.sum(), noisy, create_graph=True)[0]
    per_sample = 0.5 * ((score + noise / sigma) ** 2).flatten(1).sum(1)
    per_sample, nan_count = zero_nans(per_sample)
    loss = per_sample.sum() / (batch * dim)
    if hyper["energyWeight"] != 0:
        loss = loss + hyper["energyWeight"] / channels * energy.mean()
    return loss, nan_count


def objective_fdssm(model, x, hyper, generator):
    """Finite-difference SSM, directions on the sphere of radius epsilon, divided by B epsilon^2."""
    batch = x.shape[0]
    epsilon = hyper["epsilon"]
    gaussian = torch.randn(x.shape, generator=generator)
    norms = gaussian.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
    direction = epsilon * gaussian / norms
    energy = model.energy(torch.cat([x, x + direction, x - direction]))
    centre, plus, minus = energy[:batch], energy[batch:2 * batch], energy[2 * batch:]
    per_sample = (plus - minus) ** 2 / 8.0 + 2.0 * centre - plus - minus
    per_sample, nan_count = zero_nans(per_sample)
    loss = per_sample.sum() / (batch * epsilon ** 2)
    if hyper["energyWeight"] != 0:
        loss = loss + hyper["energyWeight"] / epsilon ** 2 * centre.mean()
    return loss, nan_count


OBJECTIVE_FUNCTIONS = {
    "ml": objective_ml, "sml": objective_sml, "ssm": objective_ssm,
    "dsm": objective_dsm, "fdssm": objective_fdssm,
}


# ------------------------------------------------------------------------------------------
# Training loop and EMA.

class ExponentialMovingAverage:
    """Shadow weights updated after every step with decay min(decay, (1 + n) / (10 + n))."""

    def __init__(self, parameters, decay):
        self.parameters = list(parameters)
        self.shadow = [parameter.detach().clone() for parameter in self.parameters]
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self):
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for shadow, parameter in zip(self.shadow, self.parameters):
            shadow.sub_((1.0 - decay) * (shadow - parameter))


def build_model(request, hyper, generator):
    height, width, channels = request["imageShape"]
    if request["arch"] == "fc":
        return DenseFlow(height * width * channels, request["L"], hyper["residual"])
    return ConvFlow(channels, height, width, generator)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def run_cell(request, hyper, openblas):
    """Build the model, run warm-up plus timed steps and return the `result` fields.

    Plan: 1. set threads and seed; 2. build model, optimiser, EMA and a fixed pixel batch;
    3. per step: preprocess, objective, backward, clip, RMSprop, EMA, read the loss, stop the clock.
    """
    set_threads(request["threads"], openblas)
    generator = torch.Generator().manual_seed(request["seed"])

    height, width, channels = request["imageShape"]
    model = build_model(request, hyper, generator)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=hyper["learningRate"], alpha=RMSPROP_ALPHA,
                                    eps=RMSPROP_EPS, weight_decay=hyper["weightDecay"])
    ema = ExponentialMovingAverage(model.parameters(), hyper["emaDecay"]) if hyper["emaDecay"] is not None else None
    pixels = torch.randint(0, 256, (request["batch"], channels, height, width), generator=generator).float()
    objective = OBJECTIVE_FUNCTIONS[request["objective"]]

    samples_ms, loss_value, nan_entries = [], float("nan"), 0
    for step in range(request["warmup"] + request["iterations"]):
        start = time.perf_counter()
        with torch.no_grad():
            x = preprocess(pixels, hyper["logitScale"], generator)
        optimizer.zero_grad(set_to_none=True)
        loss, nan_count = objective(model, x, hyper, generator)
        loss.backward()
        if hyper["gradientClip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), hyper["gradientClip"])
        optimizer.step()
        if ema is not None:
            ema.update()
        loss_value = loss.item()
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        nan_entries += nan_count
        if step >= request["warmup"]:
            samples_ms.append(round(elapsed_ms, 4))

    return {
        "samplesMs": samples_ms,
        "medianMs": median(samples_ms),
        "lastLoss": loss_value if math.isfinite(loss_value) else None,
        "threads": torch.get_num_threads(),
        "D": height * width * channels,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "nanEntries": nan_entries,
    }


# ------------------------------------------------------------------------------------------
# Protocol: validation of requests and the read-eval-write loop.

def require_int(request, key, minimum):
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise RequestError(f"run request: '{key}' must be an integer >= {minimum}, received {json.dumps(value)}")
    return value


def validate_run(request):
    """Return the request with imageShape filled in and the resolved hyper-parameters, or raise."""
    arch = request.get("arch")
    if arch not in ARCHITECTURES:
        raise RequestError(f"run request: 'arch' must be one of {', '.join(ARCHITECTURES)}, received {json.dumps(arch)}")
    objective = request.get("objective")
    if objective not in OBJECTIVES:
        raise RequestError(
            f"run request: 'objective' must be one of {', '.join(OBJECTIVES)}, received {json.dumps(objective)}")

    shape = request.get("imageShape")
    if shape is None and "D" in request:
        if arch != "fc":
            raise RequestError("run request: 'D' alone is accepted for arch 'fc' only; send 'imageShape' [H, W, C] for 'cnn'")
        shape = [1, require_int(request, "D", 1), 1]
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise RequestError(f"run request: 'imageShape' must be [H, W, C] with positive integers, received {json.dumps(shape)}")
    if arch == "cnn" and (shape[0] % 4 != 0 or shape[1] % 4 != 0):
        raise RequestError(f"run request: arch 'cnn' squeezes twice, so H and W must be multiples of 4, received {shape}")

    resolved = dict(request, imageShape=shape)
    resolved["L"] = require_int(request, "L", 1) if arch == "fc" else CNN_BLOCKS * CNN_CONVS_PER_BLOCK
    for key, minimum in (("batch", 1), ("warmup", 0), ("iterations", 1), ("threads", 1), ("seed", 0)):
        resolved[key] = require_int(request, key, minimum)

    hyper = dict(DEFAULT_HYPER[arch])
    given = request.get("hyper") or {}
    if not isinstance(given, dict):
        raise RequestError(f"run request: 'hyper' must be an object, received {json.dumps(given)}")
    for key, value in given.items():
        if key not in hyper:
            raise RequestError(f"run request: unknown hyper-parameter '{key}'; known: {', '.join(sorted(hyper))}")
        hyper[key] = value
    for key, value in hyper.items():
        check_hyper_value(key, value)
    return resolved, hyper


def check_hyper_value(key, value):
    """Raise RequestError unless `value` has the type that hyper-parameter `key` needs."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if key == "residual":
        valid = isinstance(value, bool)
    elif key in ("gradientClip", "emaDecay"):
        valid = value is None or (is_number and value > 0)
    elif key == "slices":
        valid = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    elif key in ("sigma", "epsilon", "logitScale", "learningRate"):
        valid = is_number and value > 0
    else:
        valid = is_number and value >= 0
    if not valid:
        raise RequestError(f"run request: hyper-parameter '{key}' has an invalid value {json.dumps(value)}")


def send(message):
    ordered = {"protocol": PROTOCOL_VERSION, "type": message["type"]}
    ordered.update(message)
    sys.stdout.write(json.dumps(ordered, allow_nan=False) + "\n")
    sys.stdout.flush()


def hello(openblas):
    return {
        "type": "hello",
        "engine": ENGINE_NAME,
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "maxThreads": os.cpu_count(),
        "blas": describe_blas(openblas),
        "machine": platform.processor() or platform.machine(),
        "runtime": f"Python {platform.python_version()}",
        "ompWaitPolicy": describe_openmp_wait(),
        "architectures": list(ARCHITECTURES),
        "objectives": list(OBJECTIVES),
    }


def handle_line(line, openblas):
    """Handle one request line and write its response; return False when the peer should stop."""
    line = line.strip()
    try:
        request = json.loads(line)
    except json.JSONDecodeError as error:
        send({"type": "error", "id": None, "message": f"request is not valid JSON ({error}): {line[:200]}"})
        return True
    if not isinstance(request, dict):
        send({"type": "error", "id": None, "message": f"request must be a JSON object, received: {line[:200]}"})
        return True
    request_id = request.get("id")
    if request.get("protocol") != PROTOCOL_VERSION:
        send({"type": "error", "id": request_id,
              "message": f"unsupported protocol {json.dumps(request.get('protocol'))}; this peer speaks {PROTOCOL_VERSION}"})
        return True
    kind = request.get("type")
    if kind == "shutdown":
        return False
    if kind != "run":
        send({"type": "error", "id": request_id, "message": f"unknown request type {json.dumps(kind)}; expected run or shutdown"})
        return True
    try:
        resolved, hyper = validate_run(request)
        send(dict(run_cell(resolved, hyper, openblas), type="result", id=request_id))
    except RequestError as error:
        send({"type": "error", "id": request_id, "message": str(error)})
    except Exception as error:  # a failed run must not end the peer; the driver decides what to do
        traceback.print_exc(file=sys.stderr)
        send({"type": "error", "id": request_id, "message": f"{type(error).__name__}: {error}"})
    return True


def main():
    openblas, openblas_path = find_openblas()
    if openblas_path is not None:
        print(f"pytorch peer: OpenBLAS at {openblas_path}", file=sys.stderr)
    send(hello(openblas))
    for line in sys.stdin:
        if line.strip() == "":
            continue
        if not handle_line(line, openblas):
            break


if __name__ == "__main__":
    main()
