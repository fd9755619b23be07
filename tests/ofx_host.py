"""A small OpenFX host in Python (ctypes) that drives the Chronoscope Retime bundle in tests.

It loads the bundle's binary, hands it a host struct and the suites the plugin fetches (property,
image effect, parameter, message), runs load, describe, describe-in-context and create-instance,
holds parameter values (constants or linear keyframes, with exact integrals), serves source frames
through temporal clip access, and calls render. Images are numpy RGBA arrays, top row first;
the host lays them out bottom-up as OFX expects (rows from bounds.y1), or top-down with negative
row bytes when asked.

The suite functions that OFX declares variadic (paramGetValue*, message) are received with fixed
arguments: on x86-64 System V a variadic call passes its arguments exactly like a fixed one.
"""

from __future__ import annotations

import ctypes
import itertools
import platform
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLE = REPO_ROOT / "build" / "ofx" / "Chronoscope.ofx.bundle"
BINARY = BUNDLE / "Contents" / "Linux-x86-64" / "Chronoscope.ofx"

OK, FAILED, ERR_UNKNOWN, ERR_BAD_HANDLE, ERR_BAD_INDEX, REPLY_DEFAULT = 0, 1, 3, 9, 10, 14
DEPTHS = {
    np.dtype("uint8"): "OfxBitDepthByte",
    np.dtype("uint16"): "OfxBitDepthShort",
    np.dtype("float32"): "OfxBitDepthFloat",
}


def supported_platform() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


# ---------------------------------------------------------------------------------------- C types

Status = ctypes.c_int
Handle = ctypes.c_void_p


class OfxHostStruct(ctypes.Structure):
    _fields_ = [
        ("host", Handle),
        ("fetchSuite", ctypes.CFUNCTYPE(ctypes.c_void_p, Handle, ctypes.c_char_p, ctypes.c_int)),
    ]


EntryPoint = ctypes.CFUNCTYPE(Status, ctypes.c_char_p, Handle, Handle, Handle)


class OfxPluginStruct(ctypes.Structure):
    _fields_ = [
        ("pluginApi", ctypes.c_char_p),
        ("apiVersion", ctypes.c_int),
        ("pluginIdentifier", ctypes.c_char_p),
        ("pluginVersionMajor", ctypes.c_uint),
        ("pluginVersionMinor", ctypes.c_uint),
        ("setHost", ctypes.CFUNCTYPE(None, ctypes.POINTER(OfxHostStruct))),
        ("mainEntry", EntryPoint),
    ]


def _fn(*argtypes):
    return ctypes.CFUNCTYPE(Status, *argtypes)


_P, _S, _I, _D = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double


class PropertySuite(ctypes.Structure):
    _fields_ = [
        ("propSetPointer", _fn(_P, _S, _I, _P)),
        ("propSetString", _fn(_P, _S, _I, _S)),
        ("propSetDouble", _fn(_P, _S, _I, _D)),
        ("propSetInt", _fn(_P, _S, _I, _I)),
        ("propSetPointerN", _fn(_P, _S, _I, _P)),
        ("propSetStringN", _fn(_P, _S, _I, _P)),
        ("propSetDoubleN", _fn(_P, _S, _I, ctypes.POINTER(_D))),
        ("propSetIntN", _fn(_P, _S, _I, ctypes.POINTER(_I))),
        ("propGetPointer", _fn(_P, _S, _I, ctypes.POINTER(_P))),
        ("propGetString", _fn(_P, _S, _I, ctypes.POINTER(_P))),
        ("propGetDouble", _fn(_P, _S, _I, ctypes.POINTER(_D))),
        ("propGetInt", _fn(_P, _S, _I, ctypes.POINTER(_I))),
        ("propGetPointerN", _fn(_P, _S, _I, ctypes.POINTER(_P))),
        ("propGetStringN", _fn(_P, _S, _I, ctypes.POINTER(_P))),
        ("propGetDoubleN", _fn(_P, _S, _I, ctypes.POINTER(_D))),
        ("propGetIntN", _fn(_P, _S, _I, ctypes.POINTER(_I))),
        ("propReset", _fn(_P, _S)),
        ("propGetDimension", _fn(_P, _S, ctypes.POINTER(_I))),
    ]


class ImageEffectSuite(ctypes.Structure):
    _fields_ = [
        ("getPropertySet", _fn(_P, ctypes.POINTER(_P))),
        ("getParamSet", _fn(_P, ctypes.POINTER(_P))),
        ("clipDefine", _fn(_P, _S, ctypes.POINTER(_P))),
        ("clipGetHandle", _fn(_P, _S, ctypes.POINTER(_P), ctypes.POINTER(_P))),
        ("clipGetPropertySet", _fn(_P, ctypes.POINTER(_P))),
        ("clipGetImage", _fn(_P, _D, _P, ctypes.POINTER(_P))),
        ("clipReleaseImage", _fn(_P)),
        ("clipGetRegionOfDefinition", _fn(_P, _D, _P)),
        ("abort", _fn(_P)),
    ]


class ParameterSuite(ctypes.Structure):
    _fields_ = [
        ("paramDefine", _fn(_P, _S, _S, ctypes.POINTER(_P))),
        ("paramGetHandle", _fn(_P, _S, ctypes.POINTER(_P), ctypes.POINTER(_P))),
        ("paramSetGetPropertySet", _fn(_P, ctypes.POINTER(_P))),
        ("paramGetPropertySet", _fn(_P, ctypes.POINTER(_P))),
        ("paramGetValue", _fn(_P, _P)),
        ("paramGetValueAtTime", _fn(_P, _D, _P)),
        ("paramGetDerivative", _fn(_P, _D, _P)),
        ("paramGetIntegral", _fn(_P, _D, _D, _P)),
    ]


class MessageSuite(ctypes.Structure):
    _fields_ = [("message", _fn(_P, _S, _S, _S, _S))]


# ---------------------------------------------------------------------------------------- objects


class PropertySet:
    """Named properties, each a list of values; C strings are kept alive while the set lives."""

    def __init__(self, values: dict[str, list] | None = None):
        self.values: dict[str, list] = {name: list(v) for name, v in (values or {}).items()}
        self._c_strings: dict[tuple[str, int], ctypes.Array] = {}

    def set(self, name: str, index: int, value: Any) -> None:
        items = self.values.setdefault(name, [])
        while len(items) <= index:
            items.append(None)
        items[index] = value

    def get(self, name: str, index: int) -> Any:
        items = self.values.get(name)
        if items is None:
            raise KeyError(name)
        if not 0 <= index < len(items):
            raise IndexError(index)
        return items[index]

    def c_string(self, name: str, index: int) -> int:
        buffer = ctypes.create_string_buffer(str(self.get(name, index)).encode())
        self._c_strings[(name, index)] = buffer
        return ctypes.addressof(buffer)


@dataclass
class Param:
    """A parameter instance: a constant or linear keyframes [(time, value)]."""

    kind: str
    props: PropertySet
    value: Any = None
    keys: list[tuple[float, float]] = field(default_factory=list)

    def at(self, time: float) -> Any:
        if not self.keys:
            return self.value
        times = [k[0] for k in self.keys]
        return float(np.interp(time, times, [k[1] for k in self.keys]))

    def integral(self, time1: float, time2: float) -> float:
        if not self.keys:
            return float(self.value) * (time2 - time1)
        sign, low, high = (1.0, time1, time2) if time2 >= time1 else (-1.0, time2, time1)
        points = sorted({low, high, *(t for t, _ in self.keys if low < t < high)})
        total = sum(0.5 * (self.at(a) + self.at(b)) * (b - a) for a, b in itertools.pairwise(points))
        return sign * total


@dataclass
class Clip:
    name: str
    props: PropertySet
    frames: dict[float, np.ndarray] = field(default_factory=dict)
    outputs: dict[float, np.ndarray] = field(default_factory=dict)


@dataclass
class Effect:
    props: PropertySet
    param_set_props: PropertySet = field(default_factory=PropertySet)
    params: dict[str, Param] = field(default_factory=dict)
    clips: dict[str, Clip] = field(default_factory=dict)


@dataclass
class Image:
    props: PropertySet
    array: np.ndarray


class OfxTestHost:
    """Loads the bundle and plays the host's part for one plugin, one instance at a time."""

    def __init__(self, binary: Path = BINARY, *, negative_row_bytes: bool = False):
        self.negative_row_bytes = negative_row_bytes
        self._objects: dict[int, Any] = {}
        self._ids = itertools.count(0x1000)
        self._lock = threading.Lock()
        self.messages: list[str] = []
        self.fetched_suites: list[tuple[str, int]] = []
        self.aborted = False

        self.host_props = PropertySet(
            {"OfxPropName": ["org.chronoscope.testhost"], "OfxPropLabel": ["Test host"]}
        )
        self._suites = self._make_suites()
        self._fetch = OfxHostStruct._fields_[1][1](self._fetch_suite)
        self.host_struct = OfxHostStruct(self._handle(self.host_props), self._fetch)

        self.library = ctypes.CDLL(str(binary), mode=ctypes.RTLD_LOCAL)
        set_host = getattr(self.library, "OfxSetHost", None)
        if set_host is not None:
            set_host.argtypes = [ctypes.POINTER(OfxHostStruct)]
            set_host.restype = ctypes.c_int
            set_host(ctypes.byref(self.host_struct))
        self.library.OfxGetNumberOfPlugins.restype = ctypes.c_int
        self.library.OfxGetPlugin.restype = ctypes.POINTER(OfxPluginStruct)
        self.library.OfxGetPlugin.argtypes = [ctypes.c_int]
        self.plugin_count = self.library.OfxGetNumberOfPlugins()
        self.plugin = self.library.OfxGetPlugin(0).contents
        self.plugin.setHost(ctypes.byref(self.host_struct))
        self.descriptor: Effect | None = None
        self.contexts: dict[str, Effect] = {}
        self.instance: Effect | None = None

    # -------------------------------------------------------------- handles

    def _handle(self, obj: Any) -> int:
        with self._lock:
            key = next(self._ids)
            self._objects[key] = obj
        return key

    def _get(self, handle: int | None) -> Any:
        return self._objects.get(handle or 0)

    def _forget(self, handle: int) -> None:
        with self._lock:
            self._objects.pop(handle, None)

    def _props_of(self, handle: int | None) -> PropertySet | None:
        obj = self._get(handle)
        return obj if isinstance(obj, PropertySet) else getattr(obj, "props", None)

    # -------------------------------------------------------------- suites

    def _fetch_suite(self, _host, name, version):
        self.fetched_suites.append((name.decode(), version))
        suite = self._suites.get((name.decode(), version))
        return ctypes.addressof(suite) if suite is not None else None

    def _make_suites(self) -> dict[tuple[str, int], ctypes.Structure]:
        props = PropertySuite(*[ftype(getattr(self, f"_{fname}")) for fname, ftype in PropertySuite._fields_])
        effects = ImageEffectSuite(
            *[ftype(getattr(self, f"_{fname}")) for fname, ftype in ImageEffectSuite._fields_]
        )
        params = ParameterSuite(
            *[ftype(getattr(self, f"_{fname}")) for fname, ftype in ParameterSuite._fields_]
        )
        messages = MessageSuite(MessageSuite._fields_[0][1](self._message))
        return {
            ("OfxPropertySuite", 1): props,
            ("OfxImageEffectSuite", 1): effects,
            ("OfxParameterSuite", 1): params,
            ("OfxMessageSuite", 1): messages,
        }

    # property suite
    def _set(self, handle, name, index, value) -> int:
        props = self._props_of(handle)
        if props is None:
            return ERR_BAD_HANDLE
        props.set(name.decode(), index, value)
        return OK

    def _propSetPointer(self, h, name, index, value):
        return self._set(h, name, index, value or 0)

    def _propSetString(self, h, name, index, value):
        return self._set(h, name, index, value.decode())

    def _propSetDouble(self, h, name, index, value):
        return self._set(h, name, index, float(value))

    def _propSetInt(self, h, name, index, value):
        return self._set(h, name, index, int(value))

    def _set_n(self, h, name, count, values, convert) -> int:
        props = self._props_of(h)
        if props is None:
            return ERR_BAD_HANDLE
        props.values[name.decode()] = [convert(values[i]) for i in range(count)]
        return OK

    def _propSetPointerN(self, h, name, count, values):
        array = ctypes.cast(values, ctypes.POINTER(ctypes.c_void_p))
        return self._set_n(h, name, count, array, lambda v: v or 0)

    def _propSetStringN(self, h, name, count, values):
        array = ctypes.cast(values, ctypes.POINTER(ctypes.c_char_p))
        return self._set_n(h, name, count, array, lambda v: v.decode())

    def _propSetDoubleN(self, h, name, count, values):
        return self._set_n(h, name, count, values, float)

    def _propSetIntN(self, h, name, count, values):
        return self._set_n(h, name, count, values, int)

    def _get_one(self, h, name, index, out, convert) -> int:
        props = self._props_of(h)
        if props is None:
            return ERR_BAD_HANDLE
        try:
            value = props.get(name.decode(), index)
        except KeyError:
            return ERR_UNKNOWN
        except IndexError:
            return ERR_BAD_INDEX
        out[0] = convert(props, name.decode(), index, value)
        return OK

    def _propGetPointer(self, h, name, index, out):
        return self._get_one(h, name, index, out, lambda p, n, i, v: v)

    def _propGetString(self, h, name, index, out):
        return self._get_one(h, name, index, out, lambda p, n, i, v: p.c_string(n, i))

    def _propGetDouble(self, h, name, index, out):
        return self._get_one(h, name, index, out, lambda p, n, i, v: float(v))

    def _propGetInt(self, h, name, index, out):
        return self._get_one(h, name, index, out, lambda p, n, i, v: int(v))

    def _get_n(self, h, name, count, out, convert) -> int:
        props = self._props_of(h)
        if props is None:
            return ERR_BAD_HANDLE
        try:
            values = [props.get(name.decode(), index) for index in range(count)]
        except KeyError:
            return ERR_UNKNOWN
        except IndexError:
            return ERR_BAD_INDEX
        for index, value in enumerate(values):
            out[index] = convert(props, name.decode(), index, value)
        return OK

    def _propGetPointerN(self, h, name, count, out):
        return self._get_n(h, name, count, out, lambda p, n, i, v: v)

    def _propGetStringN(self, h, name, count, out):
        return self._get_n(h, name, count, out, lambda p, n, i, v: p.c_string(n, i))

    def _propGetDoubleN(self, h, name, count, out):
        return self._get_n(h, name, count, out, lambda p, n, i, v: float(v))

    def _propGetIntN(self, h, name, count, out):
        return self._get_n(h, name, count, out, lambda p, n, i, v: int(v))

    def _propReset(self, h, name):
        props = self._props_of(h)
        if props is None:
            return ERR_BAD_HANDLE
        props.values.pop(name.decode(), None)
        return OK

    def _propGetDimension(self, h, name, out):
        props = self._props_of(h)
        if props is None:
            return ERR_BAD_HANDLE
        out[0] = len(props.values.get(name.decode(), []))
        return OK

    # image effect suite
    def _getPropertySet(self, h, out):
        effect = self._get(h)
        if not isinstance(effect, Effect):
            return ERR_BAD_HANDLE
        out[0] = self._handle(effect.props)
        return OK

    def _getParamSet(self, h, out):
        effect = self._get(h)
        if not isinstance(effect, Effect):
            return ERR_BAD_HANDLE
        out[0] = self._handle(effect)
        return OK

    def _clipDefine(self, h, name, out):
        effect = self._get(h)
        if not isinstance(effect, Effect):
            return ERR_BAD_HANDLE
        clip = Clip(name.decode(), PropertySet({"OfxPropName": [name.decode()]}))
        effect.clips[clip.name] = clip
        out[0] = self._handle(clip.props)
        return OK

    def _clipGetHandle(self, h, name, clip_out, props_out):
        effect = self._get(h)
        clip = effect.clips.get(name.decode()) if isinstance(effect, Effect) else None
        if clip is None:
            return ERR_UNKNOWN
        clip_out[0] = self._handle(clip)
        if props_out:
            props_out[0] = self._handle(clip.props)
        return OK

    def _clipGetPropertySet(self, h, out):
        clip = self._get(h)
        if not isinstance(clip, Clip):
            return ERR_BAD_HANDLE
        out[0] = self._handle(clip.props)
        return OK

    def _clipGetImage(self, h, time, region, out):
        clip = self._get(h)
        if not isinstance(clip, Clip):
            return ERR_BAD_HANDLE
        array = clip.outputs.get(time) if clip.name == "Output" else clip.frames.get(time)
        if array is None:
            return FAILED
        out[0] = self._handle(self._image(array))
        return OK

    def _image(self, array: np.ndarray) -> Image:
        height, width = array.shape[:2]
        stride = width * 4 * array.itemsize
        if self.negative_row_bytes:
            data, row_bytes = array.ctypes.data + (height - 1) * stride, -stride
        else:
            data, row_bytes = array.ctypes.data, stride
        props = PropertySet(
            {
                "OfxImagePropData": [data],
                "OfxImagePropBounds": [0, 0, width, height],
                "OfxImagePropRowBytes": [row_bytes],
                "OfxImageEffectPropPixelDepth": [DEPTHS[array.dtype]],
                "OfxImageEffectPropComponents": ["OfxImageComponentRGBA"],
                "OfxImagePropPixelAspectRatio": [1.0],
            }
        )
        return Image(props, array)

    def _clipReleaseImage(self, h):
        if not isinstance(self._get(h), Image):
            return ERR_BAD_HANDLE
        self._forget(h)
        return OK

    def _clipGetRegionOfDefinition(self, h, time, out):
        return FAILED

    def _abort(self, h):
        return 1 if self.aborted else 0

    # parameter suite
    def _paramDefine(self, h, kind, name, out):
        effect = self._get(h)
        if not isinstance(effect, Effect):
            return ERR_BAD_HANDLE
        param = Param(kind.decode(), PropertySet({"OfxParamPropType": [kind.decode()]}))
        effect.params[name.decode()] = param
        if out:
            out[0] = self._handle(param.props)
        return OK

    def _paramGetHandle(self, h, name, out, props_out):
        effect = self._get(h)
        param = effect.params.get(name.decode()) if isinstance(effect, Effect) else None
        if param is None:
            return ERR_UNKNOWN
        out[0] = self._handle(param)
        if props_out:
            props_out[0] = self._handle(param.props)
        return OK

    def _paramSetGetPropertySet(self, h, out):
        effect = self._get(h)
        if not isinstance(effect, Effect):
            return ERR_BAD_HANDLE
        out[0] = self._handle(effect.param_set_props)
        return OK

    def _paramGetPropertySet(self, h, out):
        param = self._get(h)
        if not isinstance(param, Param):
            return ERR_BAD_HANDLE
        out[0] = self._handle(param.props)
        return OK

    def _write_value(self, param: Param, value: Any, out: int) -> int:
        if param.kind == "OfxParamTypeDouble":
            ctypes.cast(out, ctypes.POINTER(ctypes.c_double))[0] = float(value)
        else:
            ctypes.cast(out, ctypes.POINTER(ctypes.c_int))[0] = int(value)
        return OK

    def _paramGetValue(self, h, out):
        param = self._get(h)
        return self._write_value(param, param.at(0.0), out) if isinstance(param, Param) else ERR_BAD_HANDLE

    def _paramGetValueAtTime(self, h, time, out):
        param = self._get(h)
        return self._write_value(param, param.at(time), out) if isinstance(param, Param) else ERR_BAD_HANDLE

    def _paramGetDerivative(self, h, time, out):
        return ERR_UNKNOWN

    def _paramGetIntegral(self, h, time1, time2, out):
        param = self._get(h)
        if not isinstance(param, Param) or param.kind != "OfxParamTypeDouble":
            return ERR_BAD_HANDLE
        ctypes.cast(out, ctypes.POINTER(ctypes.c_double))[0] = param.integral(time1, time2)
        return OK

    # message suite
    def _message(self, h, kind, message_id, format_, first):
        text = ctypes.cast(first, ctypes.c_char_p).value if format_ == b"%s" else format_
        self.messages.append(f"{kind.decode()}: {(text or b'').decode(errors='replace')}")
        return OK

    # -------------------------------------------------------------- actions

    def action(
        self,
        name: str,
        handle: int | None = None,
        in_args: PropertySet | None = None,
        out_args: PropertySet | None = None,
    ) -> int:
        in_handle = self._handle(in_args) if in_args is not None else None
        out_handle = self._handle(out_args) if out_args is not None else None
        return self.plugin.mainEntry(name.encode(), handle, in_handle, out_handle)

    def load_and_describe(self, context: str = "OfxImageEffectContextFilter") -> Effect:
        assert self.action("OfxActionLoad") == OK
        self.descriptor = Effect(PropertySet())
        assert self.action("OfxActionDescribe", self._handle(self.descriptor)) == OK
        described = Effect(PropertySet({"OfxImageEffectPropContext": [context]}))
        args = PropertySet({"OfxImageEffectPropContext": [context]})
        assert self.action("OfxImageEffectActionDescribeInContext", self._handle(described), args) == OK
        self.contexts[context] = described
        return described

    def create_instance(self, context: str, source_frames: dict[float, np.ndarray]) -> Effect:
        described = self.contexts[context]
        first, last = min(source_frames), max(source_frames)
        clips = {}
        for name, clip in described.clips.items():
            values = {k: list(v) for k, v in clip.props.values.items()}
            values["OfxImageEffectPropFrameRange"] = [float(first), float(last)]
            values["OfxImageClipPropConnected"] = [1]
            clips[name] = Clip(name, PropertySet(values))
        clips["Source"].frames = {float(t): self._host_layout(a) for t, a in source_frames.items()}
        params = {}
        for name, param in described.params.items():
            default = param.props.values.get("OfxParamPropDefault", [0])[0]
            params[name] = Param(param.kind, PropertySet(param.props.values), value=default)
        self.instance = Effect(
            PropertySet({"OfxImageEffectPropContext": [context]}), params=params, clips=clips
        )
        self.instance_handle = self._handle(self.instance)
        assert self.action("OfxActionCreateInstance", self.instance_handle) == OK
        return self.instance

    def _host_layout(self, array: np.ndarray) -> np.ndarray:
        """Bottom row first (positive row bytes), or top row first when row bytes are negative."""
        return np.ascontiguousarray(array if self.negative_row_bytes else array[::-1])

    def _from_host_layout(self, array: np.ndarray) -> np.ndarray:
        return array if self.negative_row_bytes else array[::-1]

    def set_param(self, name: str, value: Any = None, keys: list[tuple[float, float]] | None = None) -> None:
        param = self.instance.params[name]
        param.value = value
        param.keys = list(keys or [])

    def choice_index(self, name: str, option: str) -> int:
        return self.instance.params[name].props.values["OfxParamPropChoiceOption"].index(option)

    def frames_needed(self, time: float) -> list[float]:
        out = PropertySet()
        status = self.action(
            "OfxImageEffectActionGetFramesNeeded",
            self.instance_handle,
            PropertySet({"OfxPropTime": [time]}),
            out,
        )
        assert status == OK
        return out.values["OfxImageClipPropFrameRange_Source"]

    def is_identity(self, time: float) -> tuple[int, float | None]:
        out = PropertySet()
        args = PropertySet(
            {
                "OfxPropTime": [time],
                "OfxImageEffectPropFieldToRender": ["OfxImageFieldNone"],
                "OfxImageEffectPropRenderWindow": [0, 0, 1, 1],
                "OfxImageEffectPropRenderScale": [1.0, 1.0],
            }
        )
        status = self.action("OfxImageEffectActionIsIdentity", self.instance_handle, args, out)
        return status, out.values.get("OfxPropTime", [None])[0]

    def render(self, time: float, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Render output frame ``time``; returns it top row first."""
        output = self.instance.clips["Output"]
        buffer = np.zeros(shape, dtype=dtype)
        output.outputs[float(time)] = buffer
        height, width = shape[:2]
        args = PropertySet(
            {
                "OfxPropTime": [float(time)],
                "OfxImageEffectPropFieldToRender": ["OfxImageFieldNone"],
                "OfxImageEffectPropRenderWindow": [0, 0, width, height],
                "OfxImageEffectPropRenderScale": [1.0, 1.0],
            }
        )
        try:
            status = self.action("OfxImageEffectActionRender", self.instance_handle, args)
        finally:
            output.outputs.pop(float(time), None)
        if status != OK:
            raise RuntimeError(f"render of frame {time} returned status {status}")
        return np.array(self._from_host_layout(buffer))

    def unload(self) -> None:
        if self.instance is not None:
            self.action("OfxActionDestroyInstance", self.instance_handle)
        self.action("OfxActionUnload")
