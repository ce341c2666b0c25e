"""pynet.config — the training options, written down once.

Each option is a field of the C ``train_config`` (csrc/pynet_api.h) of the same name; its default
is the C core's (``default_train_config``) and its range is checked only by the C core
(``pn_check_config``). This list adds what Python needs to know about it: its kind, its help text,
and whether ``fit`` and the command line take it in epochs (the C config counts steps). From it come
``train_config`` (the C struct from keyword arguments), ``fit``'s keyword arguments and signature,
and the options of ``python -m pynet train``. Adding a training option therefore takes three edits:
the C struct and its default, its check in ``pn_check_config``, and one ``Option`` line here
(CONTRIBUTING.md).
"""
import dataclasses
import inspect

from ._native import INT_MAX, _index, _number, check, ffi, lib

__all__ = ["Option", "OPTIONS", "OPTIONS_BY_NAME", "OPTIMIZERS", "SCHEDULES", "MATMULS", "defaults", "make_config",
           "train_config", "user_options", "check_options"]

OPTIMIZERS = {"sgd": lib.PN_SGD, "adam": lib.PN_ADAM}
SCHEDULES = {"constant": lib.PN_CONSTANT, "step": lib.PN_STEP, "cosine": lib.PN_COSINE}
MATMULS = {"float64": lib.PN_FLOAT64, "float32": lib.PN_FLOAT32}


@dataclasses.dataclass(frozen=True)
class Option:
    """One training option: ``name`` (the C field, fit's keyword, the CLI's ``--name`` with dashes),
    ``kind`` (int, float, or a dict of choices: name -> C value), ``help`` and ``metavar`` for the
    CLI, ``epochs`` (fit and the CLI take it in epochs and convert it to steps), ``unset`` (a C value
    that means "not given", shown as None in Python) and ``public`` (False: fit computes it)."""
    name: str
    kind: object
    help: str
    metavar: str = None
    epochs: bool = False
    unset: object = ...   # ... : every value is a value
    public: bool = True

    def to_c(self, value):
        """The value as the C field holds it; TypeError/ValueError naming the option for a value
        of the wrong kind (a range is the C check's to judge)."""
        if isinstance(self.kind, dict):
            key = str(value).strip().lower()
            if key not in self.kind:
                raise ValueError("unknown %s %r; valid: %s" % (self.name, value, ", ".join(self.kind)))
            return self.kind[key]
        if self.kind is int:
            return _index(value, self.name, -INT_MAX - 1)
        return _number(value, self.name)

    def from_c(self, value):
        if isinstance(self.kind, dict):
            return next(k for k, v in self.kind.items() if v == value)
        if self.unset is not ... and value == 0:
            return self.unset
        return value


OPTIONS = (
    Option("batch", int, "examples per step", "N"),
    Option("optimizer", OPTIMIZERS, "SGD with momentum (the homework's rule) or Adam"),
    Option("rate", float, "peak learning rate (SGD: divided by batch, as the homework does)", "R"),
    Option("momentum", float, "SGD momentum", "M"),
    Option("decay", float, "weight decay (SGD: v = dw - decay*w + momentum*v, the homework's; Adam: decoupled, "
                           "w -= rate*decay*w)", "L"),
    Option("beta1", float, "Adam's first-moment decay", "B"),
    Option("beta2", float, "Adam's second-moment decay", "B"),
    Option("eps", float, "Adam's denominator guard", "E"),
    Option("schedule", SCHEDULES, "learning-rate schedule: constant; step (times --gamma every --step-size "
                                  "epochs); cosine (half cosine from --rate to --min-rate over the run)"),
    Option("warmup", int, "epochs of linear warm-up from 0 to --rate before the schedule starts", "EPOCHS",
           epochs=True),
    Option("step_size", int, "step schedule: epochs between cuts", "EPOCHS", epochs=True, unset=None),
    Option("gamma", float, "step schedule: factor per cut", "G"),
    Option("total_steps", int, "cosine schedule: its length in steps (fit: the whole run)", unset=None,
           public=False),
    Option("min_rate", float, "cosine schedule: final rate", "R"),
    Option("clip", float, "clip each step's gradient (of the mean loss) to this global norm (0: off)", "NORM"),
    Option("l2", float, "L2 penalty (l2/2)*sum(w^2) on each batch's summed loss, in the gradient before "
                        "clipping and the optimiser (scikit-learn's alpha; 0: off)", "ALPHA"),
    Option("matmul", MATMULS, "precision of the training step's products: float64, or float32 (operands rounded "
                              "to float32, sums of up to 256 terms in float32: 1.6-1.8x the product throughput on "
                              "AVX-512; weights, optimiser state and evaluation stay float64)"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


def defaults(public_only=True):
    """{name: default} of the options a user sets (fit's keywords; with ``public_only=False`` also
    those fit computes, total_steps), read from the C core."""
    c = lib.default_train_config()
    return {o.name: o.from_c(getattr(c, o.name)) for o in OPTIONS if o.public or not public_only}


def user_options(fn, given):
    """``given`` (keyword arguments) completed with the defaults; TypeError naming ``fn`` for a
    keyword that is not an option, as Python's own for an unexpected keyword argument."""
    unknown = [k for k in given if k not in OPTIONS_BY_NAME or not OPTIONS_BY_NAME[k].public]
    if unknown:
        raise TypeError("%s() got an unexpected keyword argument %r" % (fn, unknown[0]))
    return dict(defaults(), **given)


def make_config(fn, **settings):
    """A C ``train_config`` from keyword arguments (any of OPTIONS; the others keep the C default;
    None for an option with ``unset`` leaves it unset), checked by the C core's one range check
    (pn_check_config), whose ValueError message starts with ``fn``."""
    unknown = [k for k in settings if k not in OPTIONS_BY_NAME]
    if unknown:
        raise TypeError("%s() got an unexpected keyword argument %r" % (fn, unknown[0]))
    c = ffi.new("train_config *")
    c[0] = lib.default_train_config()
    for name, value in settings.items():
        o = OPTIONS_BY_NAME[name]
        if value is None and o.unset is None:
            continue
        setattr(c, name, o.to_c(value))
    check(lib.pn_check_config(fn.encode(), c))
    return c


def train_config(**settings):
    """A C ``train_config`` (csrc/pynet_api.h) from keyword arguments, checked by the C core's range
    check (ValueError naming the setting). Every option of OPTIONS, ``total_steps`` included."""
    return make_config("train_config", **settings)


train_config.__signature__ = inspect.Signature(
    [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value) for name, value in defaults(public_only=False).items()])


def check_options(fn, **settings):
    """Check options given in fit's units before any data is read (the command line's pre-flight):
    the C check, with an epoch count standing in for the steps it becomes and a one-step cosine.
    ValueError/TypeError naming the option."""
    settings.setdefault("total_steps", 1)
    make_config(fn, **settings)


def signature_with_options(fn, before, after):
    """fn's signature with the public options as keyword-only parameters (defaults from the C core)
    between the parameters named in ``before`` and those in ``after`` (help(fit) lists them all)."""
    params = list(inspect.signature(fn).parameters.values())
    head = [p for p in params if p.name in before]
    tail = [p for p in params if p.name in after]
    options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value)
               for name, value in defaults().items()]
    return inspect.Signature(head + options + tail)
