/* "Chronoscope Retime": an OpenFX filter that renders in-between frames through the engine.
 *
 * Each output frame at time T shows the source at time S(T): with the speed curve,
 * S = start + integral over [start, T] of speed(t) / 100 (start = the source clip's first frame);
 * with the source-frame curve, S is the curve's value. A whole S copies that source frame; else
 * the two neighbouring frames go to the engine's `synthesize` with t = S - floor(S). When the
 * engine does not answer within the timeout (or is not running), the frame is a local blend of
 * the pair with a small corner mark, and a log line says why.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge_log.h"
#include "engine_link.h"
#include "ofx_min.h"
#include "pixels.h"

#define EXPORT __attribute__((visibility("default")))

#define PLUGIN_ID "org.chronoscope.Retime"
#define PLUGIN_VERSION_MAJOR 1
#define PLUGIN_VERSION_MINOR 0

#define PARAM_MODE "mode"
#define PARAM_SPEED "speed"
#define PARAM_SOURCE_FRAME "sourceFrame"
#define PARAM_MODEL "model"
#define PARAM_RISK_OVERLAY "riskOverlay"
#define PARAM_TIMEOUT "engineTimeout"

#define MODE_SPEED 0
#define MODE_SOURCE_FRAME 1
#define WHOLE_FRAME_TOLERANCE 1e-6
#define LOG_REPEAT_INTERVAL_S 5.0

static const char *const MODELS[] = {"rife", "flow", "blend"};
#define MODEL_COUNT 3
#define DEFAULT_MODEL 1

static OfxHost *host;
static const OfxPropertySuiteV1 *props;
static const OfxImageEffectSuiteV1 *effects;
static const OfxParameterSuiteV1 *params;
static const OfxMessageSuiteV1 *messages;

/* ---- logging to the host ------------------------------------------------------------------- */

static void host_sink(bridge_level level, const char *line) {
    (void)level;
    if (messages && messages->message) messages->message(NULL, kOfxMessageLog, "", "%s", line);
}

static pthread_mutex_t fallback_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_reason[1024];
static double last_logged_s;
static long suppressed;
static int engine_was_down;

static double wall_s(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

/* One line per distinct reason, repeated at most every LOG_REPEAT_INTERVAL_S with a count. */
static void log_fallback(double time, double source_time, const char *reason) {
    pthread_mutex_lock(&fallback_lock);
    double now = wall_s();
    int repeat = strcmp(reason, last_reason) == 0 && now - last_logged_s < LOG_REPEAT_INTERVAL_S;
    engine_was_down = 1;
    if (repeat) {
        suppressed++;
        pthread_mutex_unlock(&fallback_lock);
        return;
    }
    long before = suppressed;
    suppressed = 0;
    last_logged_s = now;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    pthread_mutex_unlock(&fallback_lock);
    bridge_log(BRIDGE_WARNING, "frame %g (source %.4f): blended locally and marked, %s%s", time, source_time, reason,
               before ? " (and the same for earlier frames)" : "");
}

static void log_engine_back(void) {
    pthread_mutex_lock(&fallback_lock);
    int was_down = engine_was_down;
    engine_was_down = 0;
    last_reason[0] = '\0';
    pthread_mutex_unlock(&fallback_lock);
    if (was_down) bridge_log(BRIDGE_INFO, "the engine answers again; frames are synthesized again");
}

/* ---- describing the effect ----------------------------------------------------------------- */

static OfxStatus describe(OfxImageEffectHandle effect) {
    OfxPropertySetHandle set;
    if (effects->getPropertySet(effect, &set) != kOfxStatOK) return kOfxStatErrBadHandle;
    props->propSetString(set, kOfxPropLabel, 0, "Chronoscope Retime");
    props->propSetString(set, kOfxImageEffectPluginPropGrouping, 0, "Chronoscope");
    props->propSetString(set, kOfxPropPluginDescription, 0,
                         "Slow motion and speed ramps with generated in-between frames, rendered by the Chronoscope "
                         "engine. Apply to a clip made long enough for the new duration, then set the speed.");
    props->propSetString(set, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
    props->propSetString(set, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthByte);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthFloat);
    props->propSetInt(set, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(set, kOfxImageEffectPropSupportsTiles, 0, 0);
    props->propSetInt(set, kOfxImageEffectPropSupportsMultiResolution, 0, 0);
    props->propSetInt(set, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    props->propSetInt(set, kOfxImageEffectPluginPropSingleInstance, 0, 0);
    /* 0: the host must not split one frame into windows rendered at once; every call sends the whole frame
     * pair to the engine, so slices would synthesize the same frame once per slice and could time out apart. */
    props->propSetInt(set, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
    props->propSetString(set, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderFullySafe);
    return kOfxStatOK;
}

static OfxPropertySetHandle define_param(OfxParamSetHandle set, const char *type, const char *name, const char *label,
                                         const char *hint) {
    OfxPropertySetHandle param = NULL;
    if (params->paramDefine(set, type, name, &param) != kOfxStatOK || !param) return NULL;
    props->propSetString(param, kOfxPropLabel, 0, label);
    props->propSetString(param, kOfxParamPropHint, 0, hint);
    return param;
}

static void double_range(OfxPropertySetHandle param, double fallback, double min, double max, double display_min,
                         double display_max, int animates) {
    props->propSetDouble(param, kOfxParamPropDefault, 0, fallback);
    props->propSetDouble(param, kOfxParamPropMin, 0, min);
    props->propSetDouble(param, kOfxParamPropMax, 0, max);
    props->propSetDouble(param, kOfxParamPropDisplayMin, 0, display_min);
    props->propSetDouble(param, kOfxParamPropDisplayMax, 0, display_max);
    props->propSetInt(param, kOfxParamPropAnimates, 0, animates);
}

static OfxStatus describe_in_context(OfxImageEffectHandle effect) {
    OfxPropertySetHandle clip;
    if (effects->clipDefine(effect, kOfxImageEffectSimpleSourceClipName, &clip) != kOfxStatOK) return kOfxStatFailed;
    props->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    props->propSetInt(clip, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 0);
    if (effects->clipDefine(effect, kOfxImageEffectOutputClipName, &clip) != kOfxStatOK) return kOfxStatFailed;
    props->propSetString(clip, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    props->propSetInt(clip, kOfxImageEffectPropSupportsTiles, 0, 0);

    OfxParamSetHandle set;
    if (effects->getParamSet(effect, &set) != kOfxStatOK) return kOfxStatFailed;
    OfxPropertySetHandle param;
    if (!(param = define_param(set, kOfxParamTypeChoice, PARAM_MODE, "Retime by",
                               "Speed %: a speed curve from the clip's first frame. Source frame: which source frame "
                               "each output frame shows.")))
        return kOfxStatFailed;
    props->propSetString(param, kOfxParamPropChoiceOption, 0, "Speed %");
    props->propSetString(param, kOfxParamPropChoiceOption, 1, "Source frame");
    props->propSetInt(param, kOfxParamPropDefault, 0, MODE_SPEED);
    props->propSetInt(param, kOfxParamPropAnimates, 0, 0);
    if (!(param = define_param(set, kOfxParamTypeDouble, PARAM_SPEED, "Speed %",
                               "Playback speed of the source in percent: 50 is 2x slow motion, 10 is 10x. Animate it "
                               "for ramps.")))
        return kOfxStatFailed;
    double_range(param, 50.0, 0.0, 1000.0, 1.0, 200.0, 1);
    if (!(param = define_param(set, kOfxParamTypeDouble, PARAM_SOURCE_FRAME, "Source frame",
                               "With 'Retime by: Source frame', the source frame (fractions allowed) shown at this "
                               "frame; animate it.")))
        return kOfxStatFailed;
    double_range(param, 0.0, -1e9, 1e9, 0.0, 1000.0, 1);
    if (!(param = define_param(set, kOfxParamTypeChoice, PARAM_MODEL, "Model",
                               "How the engine makes in-between frames: rife (learned, best), flow (optical flow, no "
                               "model files), blend (cross-fade).")))
        return kOfxStatFailed;
    for (int i = 0; i < MODEL_COUNT; i++) props->propSetString(param, kOfxParamPropChoiceOption, i, MODELS[i]);
    props->propSetInt(param, kOfxParamPropDefault, 0, DEFAULT_MODEL);
    props->propSetInt(param, kOfxParamPropAnimates, 0, 0);
    if (!(param = define_param(set, kOfxParamTypeBoolean, PARAM_RISK_OVERLAY, "Risk overlay",
                               "Tint in red where a generated frame may be wrong (occlusions, fast motion).")))
        return kOfxStatFailed;
    props->propSetInt(param, kOfxParamPropDefault, 0, 0);
    props->propSetInt(param, kOfxParamPropAnimates, 0, 0);
    if (!(param = define_param(set, kOfxParamTypeDouble, PARAM_TIMEOUT, "Engine timeout (s)",
                               "How long a frame waits for the engine before it is blended locally and marked.")))
        return kOfxStatFailed;
    double_range(param, 10.0, 0.05, 600.0, 0.5, 60.0, 0);
    return kOfxStatOK;
}

/* ---- source time --------------------------------------------------------------------------- */

typedef struct {
    OfxImageClipHandle source, output;
    OfxParamHandle mode, speed, source_frame, model, risk_overlay, timeout;
} instance_handles;

static int get_handles(OfxImageEffectHandle effect, instance_handles *h) {
    OfxParamSetHandle set;
    if (effects->clipGetHandle(effect, kOfxImageEffectSimpleSourceClipName, &h->source, NULL) != kOfxStatOK) return 0;
    if (effects->clipGetHandle(effect, kOfxImageEffectOutputClipName, &h->output, NULL) != kOfxStatOK) return 0;
    if (effects->getParamSet(effect, &set) != kOfxStatOK) return 0;
    return params->paramGetHandle(set, PARAM_MODE, &h->mode, NULL) == kOfxStatOK &&
           params->paramGetHandle(set, PARAM_SPEED, &h->speed, NULL) == kOfxStatOK &&
           params->paramGetHandle(set, PARAM_SOURCE_FRAME, &h->source_frame, NULL) == kOfxStatOK &&
           params->paramGetHandle(set, PARAM_MODEL, &h->model, NULL) == kOfxStatOK &&
           params->paramGetHandle(set, PARAM_RISK_OVERLAY, &h->risk_overlay, NULL) == kOfxStatOK &&
           params->paramGetHandle(set, PARAM_TIMEOUT, &h->timeout, NULL) == kOfxStatOK;
}

static OfxRangeD source_range(const instance_handles *h) {
    OfxRangeD range = {0.0, 0.0};
    OfxPropertySetHandle clip_props;
    if (effects->clipGetPropertySet(h->source, &clip_props) == kOfxStatOK) {
        props->propGetDouble(clip_props, kOfxImageEffectPropFrameRange, 0, &range.min);
        props->propGetDouble(clip_props, kOfxImageEffectPropFrameRange, 1, &range.max);
    }
    if (range.max < range.min) range.max = range.min;
    return range;
}

/* integral of speed(t) / 100 over [from, to]: the host's, else the trapezoid rule per frame. */
static double speed_integral(OfxParamHandle speed, double from, double to) {
    double integral = 0.0;
    if (params->paramGetIntegral && params->paramGetIntegral(speed, from, to, &integral) == kOfxStatOK)
        return integral / 100.0;
    static int warned;
    if (!warned) {
        warned = 1;
        bridge_log(BRIDGE_WARNING, "the host has no speed integral (paramGetIntegral); summing the curve per frame");
    }
    integral = 0.0;
    double sign = to >= from ? 1.0 : -1.0, low = to >= from ? from : to, high = to >= from ? to : from;
    for (double t = low; t < high; t += 1.0) {
        double step = high - t < 1.0 ? high - t : 1.0, a = 0.0, b = 0.0;
        params->paramGetValueAtTime(speed, t, &a);
        params->paramGetValueAtTime(speed, t + step, &b);
        integral += 0.5 * (a + b) * step;
    }
    return sign * integral / 100.0;
}

static double source_time(const instance_handles *h, double time, OfxRangeD range) {
    int mode = MODE_SPEED;
    double source;
    params->paramGetValueAtTime(h->mode, time, &mode);
    if (mode == MODE_SOURCE_FRAME)
        params->paramGetValueAtTime(h->source_frame, time, &source);
    else
        source = range.min + speed_integral(h->speed, range.min, time);
    if (!isfinite(source)) source = range.min;
    if (source < range.min) source = range.min;
    if (source > range.max) source = range.max;
    return source;
}

/* The pair around `source`: frame0 = floor, t in [0, 1); t = 0 means frame0 alone. */
static void source_pair(double source, OfxRangeD range, double *frame0, double *t) {
    double whole = floor(source + WHOLE_FRAME_TOLERANCE);
    double fraction = source - whole;
    if (fraction < WHOLE_FRAME_TOLERANCE || whole + 1.0 > range.max) fraction = 0.0;
    *frame0 = whole;
    *t = fraction;
}

/* ---- actions on an instance ---------------------------------------------------------------- */

static OfxStatus frames_needed(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    instance_handles h;
    double time = 0.0, frame0, t;
    if (!get_handles(effect, &h)) return kOfxStatErrBadHandle;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    OfxRangeD range = source_range(&h);
    source_pair(source_time(&h, time, range), range, &frame0, &t);
    double frames[2] = {frame0, t > 0.0 ? frame0 + 1.0 : frame0};
    props->propSetDoubleN(out, kOfxImageClipPropFrameRangePrefix kOfxImageEffectSimpleSourceClipName, 2, frames);
    return kOfxStatOK;
}

static OfxStatus is_identity(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    instance_handles h;
    double time = 0.0, frame0, t;
    if (!get_handles(effect, &h)) return kOfxStatErrBadHandle;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    OfxRangeD range = source_range(&h);
    source_pair(source_time(&h, time, range), range, &frame0, &t);
    if (t > 0.0) return kOfxStatReplyDefault;
    props->propSetString(out, kOfxPropName, 0, kOfxImageEffectSimpleSourceClipName);
    props->propSetDouble(out, kOfxPropTime, 0, frame0);
    return kOfxStatOK;
}

/* Reads an image's data, bounds, row bytes and depth; 0 when it is not RGBA of a known depth. */
static int view_image(OfxPropertySetHandle image, image_view *view) {
    char *depth = NULL, *components = NULL;
    memset(view, 0, sizeof *view);
    if (props->propGetPointer(image, kOfxImagePropData, 0, &view->data) != kOfxStatOK || !view->data) return 0;
    props->propGetIntN(image, kOfxImagePropBounds, 4, &view->bounds.x1);
    props->propGetInt(image, kOfxImagePropRowBytes, 0, &view->row_bytes);
    props->propGetString(image, kOfxImageEffectPropPixelDepth, 0, &depth);
    props->propGetString(image, kOfxImageEffectPropComponents, 0, &components);
    if (!depth || !components || strcmp(components, kOfxImageComponentRGBA) != 0) return 0;
    view->depth_bytes = strcmp(depth, kOfxBitDepthByte) == 0    ? 1
                        : strcmp(depth, kOfxBitDepthShort) == 0 ? 2
                        : strcmp(depth, kOfxBitDepthFloat) == 0 ? 4
                                                                : 0;
    return view->depth_bytes != 0 && view->bounds.x2 > view->bounds.x1 && view->bounds.y2 > view->bounds.y1;
}

static int same_layout(const image_view *a, const image_view *b) {
    return a->depth_bytes == b->depth_bytes && a->bounds.x1 == b->bounds.x1 && a->bounds.y1 == b->bounds.y1 &&
           a->bounds.x2 == b->bounds.x2 && a->bounds.y2 == b->bounds.y2;
}

/* Synthesizes the frame between a and b through the engine into `out`; 0 with a reason. */
static int render_through_engine(const image_view *a, const image_view *b, double t, const char *model,
                                 double timeout_s, int overlay, image_view *out, const OfxRectI *window, char *reason,
                                 size_t reason_size) {
    int width = image_width(a), height = image_height(a);
    int wire_bytes = a->depth_bytes == 1 ? 1 : 2;
    size_t frame_bytes = (size_t)width * height * 4 * wire_bytes;
    wire_encoding encoding = wire_encoding_for(a, b); /* floats only; see pixels.h */
    unsigned char *wire0 = malloc(frame_bytes), *wire1 = malloc(frame_bytes), *result = malloc(frame_bytes);
    float *risk = overlay ? malloc((size_t)width * height * sizeof(float)) : NULL;
    int ok = 0;
    if (!wire0 || !wire1 || !result || (overlay && !risk)) {
        snprintf(reason, reason_size, "out of memory for %dx%d frames", width, height);
    } else {
        pack_wire(a, &encoding, wire0);
        pack_wire(b, &encoding, wire1);
        link_request request = {height, width, wire_bytes, wire0, wire1, t, model, timeout_s, result, risk};
        ok = link_synthesize(&request, reason, reason_size);
        if (ok) {
            unpack_wire(result, &a->bounds, &encoding, out, window);
            if (overlay) overlay_risk(risk, &a->bounds, out, window);
        }
    }
    free(wire0);
    free(wire1);
    free(result);
    free(risk);
    return ok;
}

static OfxStatus render(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
    instance_handles h;
    if (!get_handles(effect, &h)) return kOfxStatErrBadHandle;
    double time = 0.0;
    OfxRectI window;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    props->propGetIntN(in, kOfxImageEffectPropRenderWindow, 4, &window.x1);

    OfxRangeD range = source_range(&h);
    double source = source_time(&h, time, range), frame0, t;
    source_pair(source, range, &frame0, &t);
    int model_index = DEFAULT_MODEL, overlay = 0;
    double timeout_s = 10.0;
    params->paramGetValueAtTime(h.model, time, &model_index);
    params->paramGetValueAtTime(h.risk_overlay, time, &overlay);
    params->paramGetValueAtTime(h.timeout, time, &timeout_s);
    if (model_index < 0 || model_index >= MODEL_COUNT) model_index = DEFAULT_MODEL;
    if (!(timeout_s > 0.0)) timeout_s = 10.0;

    OfxPropertySetHandle out_image = NULL, image0 = NULL, image1 = NULL;
    OfxStatus status = kOfxStatFailed;
    image_view out, a, b;
    if (effects->clipGetImage(h.output, time, NULL, &out_image) != kOfxStatOK || !view_image(out_image, &out)) {
        bridge_log(BRIDGE_ERROR, "frame %g: the host gave no RGBA output image", time);
        goto done;
    }
    if (effects->clipGetImage(h.source, frame0, NULL, &image0) != kOfxStatOK || !view_image(image0, &a) ||
        a.depth_bytes != out.depth_bytes) {
        bridge_log(BRIDGE_ERROR, "frame %g: no RGBA source image at frame %g in the output's depth", time, frame0);
        goto done;
    }
    if (t > 0.0 && (effects->clipGetImage(h.source, frame0 + 1.0, NULL, &image1) != kOfxStatOK ||
                    !view_image(image1, &b) || !same_layout(&a, &b))) {
        bridge_log(BRIDGE_WARNING, "frame %g: source frame %g is missing or differs in size; showing frame %g", time,
                   frame0 + 1.0, frame0);
        t = 0.0;
    }
    if (t == 0.0) {
        copy_image(&a, &out, &window);
        status = kOfxStatOK;
        goto done;
    }
    char reason[1024];
    if (render_through_engine(&a, &b, t, MODELS[model_index], timeout_s, overlay, &out, &window, reason,
                              sizeof reason)) {
        log_engine_back();
    } else {
        log_fallback(time, source, reason);
        blend_images(&a, &b, t, &out, &window);
        corner_mark(&out, &a.bounds, &window);
    }
    status = kOfxStatOK;
done:
    if (image1) effects->clipReleaseImage(image1);
    if (image0) effects->clipReleaseImage(image0);
    if (out_image) effects->clipReleaseImage(out_image);
    return status;
}

/* ---- entry points -------------------------------------------------------------------------- */

static OfxStatus load(void) {
    if (!host || !host->fetchSuite) return kOfxStatErrMissingHostFeature;
    props = host->fetchSuite(host->host, kOfxPropertySuite, 1);
    effects = host->fetchSuite(host->host, kOfxImageEffectSuite, 1);
    params = host->fetchSuite(host->host, kOfxParameterSuite, 1);
    messages = host->fetchSuite(host->host, kOfxMessageSuite, 1);
    if (!props || !effects || !params) return kOfxStatErrMissingHostFeature;
    bridge_log_set_sink(host_sink);
    return kOfxStatOK;
}

static OfxStatus unload(void) {
    link_shutdown();
    pthread_mutex_lock(&fallback_lock);
    last_reason[0] = '\0';
    suppressed = 0;
    engine_was_down = 0;
    pthread_mutex_unlock(&fallback_lock);
    bridge_log_set_sink(NULL);
    return kOfxStatOK;
}

static OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle in,
                            OfxPropertySetHandle out) {
    OfxImageEffectHandle effect = (OfxImageEffectHandle)handle;
    if (!action) return kOfxStatErrBadHandle;
    if (strcmp(action, kOfxActionLoad) == 0) return load();
    if (!props || !effects || !params) return kOfxStatErrMissingHostFeature;
    if (strcmp(action, kOfxActionUnload) == 0) return unload();
    if (strcmp(action, kOfxActionDescribe) == 0) return describe(effect);
    if (strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) return describe_in_context(effect);
    if (strcmp(action, kOfxActionCreateInstance) == 0) {
        instance_handles h;
        return get_handles(effect, &h) ? kOfxStatOK : kOfxStatErrBadHandle;
    }
    if (strcmp(action, kOfxActionDestroyInstance) == 0) return kOfxStatOK;
    if (strcmp(action, kOfxImageEffectActionRender) == 0) return render(effect, in);
    if (strcmp(action, kOfxImageEffectActionIsIdentity) == 0) return is_identity(effect, in, out);
    if (strcmp(action, kOfxImageEffectActionGetFramesNeeded) == 0) return frames_needed(effect, in, out);
    return kOfxStatReplyDefault;
}

static void set_host(OfxHost *given) { host = given; }

static OfxPlugin retime_plugin = {
    kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, PLUGIN_ID, PLUGIN_VERSION_MAJOR, PLUGIN_VERSION_MINOR,
    set_host,                 main_entry,
};

EXPORT OfxStatus OfxSetHost(const OfxHost *given) {
    host = (OfxHost *)given;
    return kOfxStatOK;
}

EXPORT int OfxGetNumberOfPlugins(void) { return 1; }

EXPORT OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &retime_plugin : NULL; }
