"""Settings declared once: one dataclass per group, from which registered functions and default
configs are derived.

A group is a dataclass whose fields are declared with :func:`setting` (default and help text)
and which validates itself in ``__post_init__`` with the ``check_*`` helpers, so every error
names the setting and its allowed values. :func:`registered_with` gives a builder the keyword
signature of its groups, which is what spaCy and confection read to validate a config block;
:func:`config_defaults` gives the matching default config. A new setting is one field.

spaCy and thinc have no such mechanism: their registered functions spell out every argument.
"""

import dataclasses
import functools
import inspect
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple, Type, TypeVar, get_type_hints

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Optional[Callable[[], Any]] = None) -> Any:
    """A documented dataclass field; ``factory`` for mutable defaults."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


# -- checks used by every group's __post_init__ ---------------------------------------------


def _is_number(value: Any) -> bool:
    # bool is an int subclass: true/false are refused where a number is meant.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_int(name: str, value: Any, *, minimum: int = 1) -> None:
    """An integer of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = (
            "a positive integer"
            if minimum == 1
            else "a non-negative integer"
            if minimum == 0
            else f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float = 0,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = True,
) -> None:
    """A number from ``low`` (or above it, ``low_open``) up to ``high`` (or below it, ``high_open``)."""
    ok = _is_number(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if high is None and low == 0:
        what = "a positive number" if low_open else "zero or a positive number"
    elif high is None:
        what = f"a number {'>' if low_open else '>='} {low}"
    else:
        what = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    raise ValueError(f"{name} must be {what}, got {value!r}")


# -- groups ---------------------------------------------------------------------------------


def group_fields(group: Type[Any]) -> Tuple[dataclasses.Field, ...]:
    return dataclasses.fields(group)


def _nested_group(annotation: Any) -> Optional[Type[Any]]:
    """The settings group inside ``Optional[Group]``, if the annotation is one."""
    args = getattr(annotation, "__args__", ()) or ()
    for candidate in (annotation, *args):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def from_config(group: Type[T], values: Any, *, name: str = "") -> T:
    """Build ``group`` from a config table, refusing unknown keys; nested groups from sub-tables."""
    if isinstance(values, group):
        return values
    if not isinstance(values, dict):
        raise ValueError(f"{name or group.__name__} must be a table of settings, got {values!r}")
    known = {f.name for f in group_fields(group)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown {name + ' ' if name else ''}setting(s) {unknown}: allowed are {sorted(known)}")
    return _build_group(group, values)


def nested_from_config(group: Type[T], value: Any, name: str) -> Optional[T]:
    """A nested group's table (``[model.backbone.lora]``); null or an empty table mean none."""
    if value is None or isinstance(value, group):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a table of settings or null, got {value!r}")
    return from_config(group, value, name=name) if value else None


def to_config(settings: Any) -> Dict[str, Any]:
    """A group as a plain config table (nested groups as tables)."""
    return {
        f.name: to_config(v) if dataclasses.is_dataclass(v := getattr(settings, f.name)) else v
        for f in group_fields(type(settings))
    }


def _config_default(f: dataclasses.Field) -> Any:
    """A field's default as a config value (``inspect.Parameter.empty`` where it has none)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    else:
        return inspect.Parameter.empty
    return to_config(default) if dataclasses.is_dataclass(default) else default


def config_defaults(group: Type[Any], *, omit: Sequence[str] = (), **overrides: Any) -> Dict[str, Any]:
    """The default config table of ``group``: every field with a default, then ``overrides``.

    Fields without a default must be given in ``overrides`` (or left to the user's config).
    """
    table = {f.name: _config_default(f) for f in group_fields(group) if f.name not in omit}
    table = {k: v for k, v in table.items() if v is not inspect.Parameter.empty}
    table.update(overrides)
    return table


def _config_annotation(annotation: Any) -> Any:
    """What a config value of a field looks like: nested groups arrive as tables."""
    return Optional[Dict[str, Any]] if _nested_group(annotation) is not None else annotation


def _parameters(group: Type[Any], omit: Sequence[str]) -> Iterable[inspect.Parameter]:
    hints = get_type_hints(group)
    for f in group_fields(group):
        if f.name not in omit:
            annotation = _config_annotation(hints[f.name])
            yield inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=_config_default(f), annotation=annotation
            )


def registered_with(*groups: Type[Any], omit: Sequence[str] = ()) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a builder the keyword signature of its settings groups.

    The builder's last parameters take one instance per group, in order; the parameters before
    them (e.g. ``backbone``, or a factory's ``nlp, name, model``) are its own. The registered
    function takes the groups' fields as keywords, builds and validates each group, and calls the
    builder. spaCy and confection validate a config block against that signature, so an unknown
    or mistyped key is reported as usual. ``omit``: fields a builder fixes itself.
    """

    def decorate(build: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(build)
        all_params = list(signature.parameters.values())
        own, group_params = all_params[: len(all_params) - len(groups)], all_params[len(all_params) - len(groups) :]
        fields = [[f.name for f in group_fields(group) if f.name not in omit] for group in groups]

        @functools.wraps(build)
        def registered(*args: Any, **kwargs: Any) -> T:
            kwargs.update(zip([p.name for p in own], args))  # the builder's own parameters may come by position
            unknown = sorted(set(kwargs) - known)
            if unknown:
                raise TypeError(f"{build.__name__}() got unexpected argument(s) {unknown}: allowed are {sorted(known)}")
            built = {
                param.name: _build_group(group, {k: kwargs[k] for k in keys if k in kwargs})
                for param, group, keys in zip(group_params, groups, fields)
            }
            return build(**{p.name: kwargs[p.name] for p in own if p.name in kwargs}, **built)

        params = own + [p for group in groups for p in _parameters(group, omit)]
        known = {p.name for p in params}
        # inspect.signature must read this signature, not follow __wrapped__ to the builder's.
        del registered.__wrapped__  # type: ignore[attr-defined]
        registered.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        hints = {k: v for k, v in build.__annotations__.items() if k == "return" or k in {p.name for p in own}}
        registered.__annotations__ = {**hints, **{p.name: p.annotation for p in params[len(own) :]}}
        return registered

    return decorate


def _build_group(group: Type[T], values: Dict[str, Any]) -> T:
    hints = get_type_hints(group)
    kwargs = {}
    for key, value in values.items():
        nested = _nested_group(hints[key])
        kwargs[key] = nested_from_config(nested, value, key) if nested is not None else value
    return group(**kwargs)
