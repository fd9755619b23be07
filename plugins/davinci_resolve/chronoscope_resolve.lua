--[[
What the three Chronoscope Lua scripts for DaVinci Resolve share (the free edition runs Lua only).

The twin of chronoscope_resolve.py: the same bridge (`chronoscope bridge`), found the same way
(resolve-bridge.json from $CHRONOSCOPE_BRIDGE_CONFIG, beside this file, or in Chronoscope's config
folder; else `chronoscope` on PATH). The request goes to the bridge through a temporary file; the
bridge answers with `--reply lua`, a Lua chunk (`return {...}`), so that no reply needs parsing
here; only the config is JSON, read by a small reader below (UTF-8 as written, `\uXXXX` escapes too).
Its log lines stream to Resolve's console through io.popen where it exists (os.execute otherwise).
`timeout_s` from the config goes with every request: the bridge waits that long for each engine
job, cancels one that runs longer and goes on with the next (Lua cannot time a pipe itself).

Works on Lua 5.1 (LuaJIT, as in Resolve) up to 5.4.
--]]

local M = {}

M.PROTOCOL_VERSION = 1
M.CONFIG_FILE_NAME = "resolve-bridge.json"
M.MARKER_TAG = '{"chronoscope":'
M.MARKER_NOTE_TAG = "Chronoscope marker: " -- how our notes' last line starts (OTIO keeps notes)
M.MARKER_COLORS = { "Blue", "Green", "Red", "Yellow", "Cream" } -- the speed classes' colours
M.BIN_NAME = "Chronoscope"
M.DEFAULT_RENDER_FLAG = "Purple"
M.TITLES = {
  detect = "Chronoscope - Detect Speed",
  render = "Chronoscope - Render Slow Motion",
  preview = "Chronoscope - Open in Preview",
}

local WINDOWS = package.config:sub(1, 1) == "\\"
local SEP = WINDOWS and "\\" or "/"

local function here()
  local source = debug.getinfo(1, "S").source
  if source:sub(1, 1) == "@" then
    return source:sub(2):match("^(.*[/\\])") or ""
  end
  return ""
end
M.HERE = here()

-- ------------------------------------------------------------------ small helpers

local function file_exists(path)
  local handle = io.open(path, "rb")
  if handle then
    handle:close()
    return true
  end
  return false
end

local function read_file(path)
  local handle = io.open(path, "rb")
  if not handle then
    return nil
  end
  local text = handle:read("*a")
  handle:close()
  return text
end

local function write_file(path, text)
  local handle, problem = io.open(path, "wb")
  if not handle then
    error({ user = "cannot write " .. path .. ": " .. tostring(problem) })
  end
  handle:write(text)
  handle:close()
end

local function fail(message)
  error({ user = message }, 0)
end
M.fail = fail

local ARRAY = {}

--- `items` (a table, or a new one) marked as a JSON array, so that it is written `[]` when empty;
--- an empty table without the mark is written `{}`.
function M.array(items)
  return setmetatable(items or {}, ARRAY)
end

--- JSON text for plain Lua data (strings, numbers, booleans, arrays, string-keyed tables).
function M.json(value)
  local kind = type(value)
  if kind == "nil" then
    return "null"
  elseif kind == "boolean" then
    return value and "true" or "false"
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      return "null"
    end
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then
      return string.format("%d", value)
    end
    return string.format("%.17g", value)
  elseif kind == "string" then
    local escaped = value:gsub('[%c"\\]', function(c)
      local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
      return named[c] or string.format("\\u%04x", c:byte())
    end)
    return '"' .. escaped .. '"'
  elseif kind == "table" then
    local count = 0
    for _ in pairs(value) do
      count = count + 1
    end
    if count == #value then
      local parts = {}
      for i = 1, #value do
        parts[i] = M.json(value[i])
      end
      if count == 0 then
        return getmetatable(value) == ARRAY and "[]" or "{}"
      end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for key in pairs(value) do
      keys[#keys + 1] = tostring(key)
    end
    table.sort(keys)
    local parts = {}
    for _, key in ipairs(keys) do
      parts[#parts + 1] = M.json(key) .. ":" .. M.json(value[key])
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot write a " .. kind .. " as JSON")
end

-- ------------------------------------------------------------------ JSON reader

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

--- What a JSON `null` reads as (so that an array keeps its length).
M.null = setmetatable({}, { __tostring = function() return "null" end })

local function json_error(message, pos)
  error({ json = message .. " at character " .. pos }, 0)
end

--- `code` (a Unicode code point) as UTF-8 bytes.
local function utf8_char(code)
  if code < 0x80 then
    return string.char(code)
  elseif code < 0x800 then
    return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
      0x80 + code % 0x40)
  end
  return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

-- The four hex digits of a \u escape starting at `text[pos]`, as a number.
local function hex4(text, pos)
  local digits = text:sub(pos, pos + 3)
  if not digits:match("^%x%x%x%x$") then
    json_error("invalid \\uXXXX escape", pos - 2)
  end
  return tonumber(digits, 16)
end

--- The JSON string starting at `text[pos]` (a quote): its value (UTF-8) and the position after it.
--- `\uXXXX` escapes become UTF-8, surrogate pairs included (a lone surrogate becomes U+FFFD), so
--- that a config Python wrote with ASCII escapes (`\u00e9`) reads as the path it names.
local function read_json_string(text, pos)
  local out, i = {}, pos + 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == '"' then
      return table.concat(out), i + 1
    elseif c == "\\" then
      local e = text:sub(i + 1, i + 1)
      if e == "u" then
        local code = hex4(text, i + 2)
        i = i + 6
        if code >= 0xD800 and code <= 0xDBFF and text:sub(i, i + 1) == "\\u" then
          local low = hex4(text, i + 2)
          if low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            i = i + 6
          end
        end
        if code >= 0xD800 and code <= 0xDFFF then
          code = 0xFFFD
        end
        out[#out + 1] = utf8_char(code)
      elseif ESCAPES[e] then
        out[#out + 1] = ESCAPES[e]
        i = i + 2
      else
        json_error("invalid \\escape", i)
      end
    elseif c:byte() < 32 then
      json_error("invalid control character", i)
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  json_error("unterminated string", pos)
end

local function skip_space(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local read_value

-- A JSON number starting at `text[pos]`, read as Python's json module reads one (NaN and
-- Infinity included): its value, its text, and the position after it.
local function read_number(text, pos)
  for word, value in pairs({ NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge }) do
    if text:sub(pos, pos + #word - 1) == word then
      return value, word, pos + #word
    end
  end
  local minus, whole = text:match("^(%-?)(%d+)", pos)
  if not whole or (#whole > 1 and whole:sub(1, 1) == "0") then
    json_error("expecting value", pos)
  end
  local finish = pos + #minus + #whole
  local fraction = text:match("^%.%d+", finish)
  if fraction then
    finish = finish + #fraction
  end
  local exponent = text:match("^[eE][%+%-]?%d+", finish)
  if exponent then
    finish = finish + #exponent
  end
  local written = text:sub(pos, finish - 1)
  return tonumber(written), written, finish
end

read_value = function(text, pos)
  pos = skip_space(text, pos)
  local c = text:sub(pos, pos)
  if c == '"' then
    return read_json_string(text, pos)
  elseif c == "{" then
    local object = {}
    pos = skip_space(text, pos + 1)
    if text:sub(pos, pos) == "}" then
      return object, pos + 1
    end
    while true do
      pos = skip_space(text, pos)
      if text:sub(pos, pos) ~= '"' then
        json_error("expecting property name enclosed in double quotes", pos)
      end
      local key
      key, pos = read_json_string(text, pos)
      pos = skip_space(text, pos)
      if text:sub(pos, pos) ~= ":" then
        json_error("expecting ':' delimiter", pos)
      end
      object[key], pos = read_value(text, pos + 1)
      pos = skip_space(text, pos)
      local next_char = text:sub(pos, pos)
      if next_char == "}" then
        return object, pos + 1
      elseif next_char ~= "," then
        json_error("expecting ',' delimiter", pos)
      end
      pos = pos + 1
    end
  elseif c == "[" then
    local array = M.array()
    pos = skip_space(text, pos + 1)
    if text:sub(pos, pos) == "]" then
      return array, pos + 1
    end
    while true do
      array[#array + 1], pos = read_value(text, pos)
      pos = skip_space(text, pos)
      local next_char = text:sub(pos, pos)
      if next_char == "]" then
        return array, pos + 1
      elseif next_char ~= "," then
        json_error("expecting ',' delimiter", pos)
      end
      pos = pos + 1
    end
  end
  for word, value in pairs({ ["true"] = true, ["false"] = false, null = M.null }) do
    if text:sub(pos, pos + #word - 1) == word then
      return value, pos + #word
    end
  end
  local number, _, finish = read_number(text, pos)
  return number, finish
end

--- The JSON value `text` holds (objects as tables, arrays marked with `M.array`, null as
--- `M.null`); fails with `{json = message}` where Python's json module would refuse it.
function M.decode_json(text)
  local value, pos = read_value(text, 1)
  pos = skip_space(text, pos)
  if pos <= #text then
    json_error("extra data", pos)
  end
  return value
end

--- A JSON value as Python's `repr` shows it in a message: `-5`, `1000.0`, `'600'`, `True`, `None`.
local function python_repr(value)
  local kind = type(value)
  if value == M.null or value == nil then
    return "None"
  elseif kind == "boolean" then
    return value and "True" or "False"
  elseif kind == "string" then
    return "'" .. value .. "'"
  elseif kind == "number" then
    if value ~= value then
      return "nan"
    elseif value == math.huge or value == -math.huge then
      return value > 0 and "inf" or "-inf"
    elseif math.type and math.type(value) == "integer" then
      return string.format("%d", value)
    elseif not math.type and value == math.floor(value) and math.abs(value) < 1e15 then
      return string.format("%.0f", value) -- Lua 5.1 (LuaJIT, as in Resolve) has one number type
    end
    for digits = 15, 17 do
      local text = string.format("%." .. digits .. "g", value)
      if tonumber(text) == value then
        return text:find("[%.eni]") and text or text .. ".0"
      end
    end
  end
  return M.json(value)
end

--- The settings in resolve-bridge.json: `command` (a list, or one string), `render_dir`,
--- `render_flag`, `screenshot`, `start_engine` and `timeout_s` as JSON reads them. Text that is
--- not JSON fails as Python's reader would, naming `path`.
function M.parse_settings(text, path)
  local ok, data = pcall(M.decode_json, text)
  if not ok then
    if type(data) == "table" and data.json then
      fail(tostring(path or M.CONFIG_FILE_NAME) .. " cannot be read (" .. data.json
        .. "); re-run the Chronoscope installer")
    end
    error(data, 0)
  end
  local settings = {}
  if type(data) ~= "table" or getmetatable(data) == ARRAY or data == M.null then
    return settings
  end
  local command = data.command
  if type(command) == "string" then
    command = { command }
  end
  if type(command) == "table" and #command > 0 then
    settings.command = {}
    for i, part in ipairs(command) do
      if type(part) ~= "string" then
        settings.command = nil
        break
      end
      settings.command[i] = part
    end
  end
  for _, key in ipairs({ "render_dir", "render_flag", "screenshot" }) do
    if type(data[key]) == "string" and data[key] ~= "" then
      settings[key] = data[key]
    end
  end
  if type(data.start_engine) == "boolean" then
    settings.start_engine = data.start_engine
  end
  if data.timeout_s ~= nil and data.timeout_s ~= M.null then
    settings.timeout_s = data.timeout_s
  end
  return settings
end

--- The longest wait for one engine job, in seconds: the config's `timeout_s` (600 without one),
--- refused as the Python script refuses it: a number of seconds above 0, and at most 30 days.
function M.job_timeout(settings)
  local value = settings.timeout_s
  if value == nil then
    return 600
  end
  if type(value) == "number" and value == value and value > 0 and value <= 2592000 then
    return value
  end
  fail("timeout_s in " .. tostring(settings.config_path or M.CONFIG_FILE_NAME)
    .. " must be a number of seconds above 0 and at most 2592000 (30 days; e.g. 600), not "
    .. python_repr(value))
end

-- ------------------------------------------------------------------ installation

function M.user_config_dir()
  local home_override = os.getenv("CHRONOSCOPE_HOME")
  if home_override and home_override ~= "" then
    return home_override .. SEP .. "config"
  end
  local home = os.getenv("HOME") or os.getenv("USERPROFILE") or ""
  if WINDOWS then
    local base = os.getenv("LOCALAPPDATA") or (home .. "\\AppData\\Local")
    return base .. "\\Chronoscope"
  end
  if file_exists("/System/Library/CoreServices/SystemVersion.plist") then
    return home .. "/Library/Application Support/Chronoscope"
  end
  local base = os.getenv("XDG_CONFIG_HOME")
  if not base or base == "" then
    base = home .. "/.config"
  end
  return base .. "/Chronoscope"
end

function M.config_candidates()
  local paths = {}
  local explicit = os.getenv("CHRONOSCOPE_BRIDGE_CONFIG")
  if explicit and explicit ~= "" then
    paths[#paths + 1] = explicit
  end
  paths[#paths + 1] = M.HERE .. M.CONFIG_FILE_NAME
  paths[#paths + 1] = M.user_config_dir() .. SEP .. M.CONFIG_FILE_NAME
  return paths
end

local function on_path(name)
  local path = os.getenv("PATH") or ""
  local list_sep = WINDOWS and ";" or ":"
  for folder in (path .. list_sep):gmatch("(.-)" .. list_sep) do
    if folder ~= "" then
      for _, suffix in ipairs(WINDOWS and { ".exe", ".cmd", ".bat" } or { "" }) do
        local candidate = folder .. SEP .. name .. suffix
        if file_exists(candidate) then
          return candidate
        end
      end
    end
  end
  return nil
end

function M.load_settings()
  local looked = {}
  for _, path in ipairs(M.config_candidates()) do
    looked[#looked + 1] = path
    local text = read_file(path)
    if text then
      local settings = M.parse_settings(text, path)
      if not settings.command or #settings.command == 0 then
        fail(path .. ' names no command (expected "command": ["/path/to/chronoscope"]); '
          .. "re-run the Chronoscope installer")
      end
      if not file_exists(settings.command[1]) and not on_path(settings.command[1]) then
        fail("Chronoscope is not installed where " .. path .. " says: " .. settings.command[1]
          .. " does not exist; re-run the Chronoscope installer")
      end
      settings.config_path = path
      return settings
    end
  end
  local found = on_path("chronoscope")
  if found then
    return { command = { found } }
  end
  fail("Chronoscope is not installed, or this script cannot find it: no " .. M.CONFIG_FILE_NAME .. " in "
    .. table.concat(looked, ", ") .. ", and no `chronoscope` command on PATH. Install Chronoscope, or run "
    .. "`chronoscope bridge --install-config` in its environment.")
end

-- ------------------------------------------------------------------ bridge

local function quote(argument)
  if WINDOWS then
    return '"' .. argument:gsub('"', '\\"') .. '"'
  end
  return "'" .. argument:gsub("'", "'\\''") .. "'"
end

local function temporary(suffix)
  local name = os.tmpname()
  if WINDOWS and name:sub(1, 1) == "\\" then
    name = (os.getenv("TEMP") or ".") .. name
  end
  os.remove(name)
  return name .. suffix
end

--- Send one request to `chronoscope bridge --reply lua`; return the reply table or fail clearly.
function M.call_bridge(settings, request, echo)
  local parts = {}
  for i, argument in ipairs(settings.command) do
    parts[i] = quote(argument)
  end
  local request_path, reply_path = temporary(".json"), temporary(".lua")
  request.protocol = M.PROTOCOL_VERSION
  if settings.start_engine ~= nil and request.start_engine == nil then
    request.start_engine = settings.start_engine
  end
  if request.timeout_s == nil then
    request.timeout_s = M.job_timeout(settings)
  end
  write_file(request_path, M.json(request))
  local line = table.concat(parts, " ") .. " bridge --reply lua < " .. quote(request_path)
    .. " 2>&1 1> " .. quote(reply_path)
  if WINDOWS then
    line = '"' .. line .. '"'
  end
  local log = {}
  local pipe = io.popen and io.popen(line, "r")
  if pipe then
    for text in pipe:lines() do
      log[#log + 1] = text
      if echo then
        echo(text)
      end
    end
    pipe:close()
  else
    os.execute(line)
  end
  os.remove(request_path)
  local chunk = loadfile(reply_path)
  os.remove(reply_path)
  if not chunk then
    local tail = {}
    for i = math.max(1, #log - 5), #log do
      tail[#tail + 1] = log[i]
    end
    fail("Chronoscope's bridge failed without an answer:\n" .. table.concat(tail, "\n"))
  end
  local reply = chunk()
  if type(reply) ~= "table" then
    fail("Chronoscope's bridge answered something that is not a reply")
  end
  if not reply.ok then
    local problem = reply.error or {}
    error({ user = problem.message or "Chronoscope reported an error", kind = problem.type }, 0)
  end
  return reply
end

-- ------------------------------------------------------------------ Resolve

function M.get_resolve(given)
  local app = given
  if app == nil and type(Resolve) == "function" then
    app = Resolve()
  end
  if app == nil then
    fail("DaVinci Resolve is not reachable: run this from Workspace > Scripts inside Resolve")
  end
  return app
end

function M.current_timeline(app)
  local manager = app:GetProjectManager()
  local project = manager and manager:GetCurrentProject()
  if not project then
    fail("no project is open in Resolve; open one and run the script again")
  end
  local timeline = project:GetCurrentTimeline()
  if not timeline then
    fail("project '" .. project:GetName() .. "' has no timeline open; open one and run again")
  end
  return project, timeline
end

function M.export_timeline(app, timeline)
  local path = temporary(".otio")
  if app.EXPORT_OTIO == nil then
    fail("this Resolve cannot export OTIO (EXPORT_OTIO needs Resolve 18.5 or later)")
  end
  if not timeline:Export(path, app.EXPORT_OTIO) or not file_exists(path) then
    fail("Resolve could not export timeline '" .. timeline:GetName() .. "' as OTIO to " .. path)
  end
  return path
end

-- Custom data this script wrote: the JSON object the bridge made ({"chronoscope": ...}). Lua has no
-- JSON reader for it, so the object's two ends are checked, as the Python script parses it whole.
local function own_custom_data(custom_data)
  return type(custom_data) == "string"
    and custom_data:sub(1, #M.MARKER_TAG) == M.MARKER_TAG
    and custom_data:match("}%s*$") ~= nil
end

local function last_line(note)
  return type(note) == "string" and (note:match("([^\n]*)$") or "") or ""
end

local function starts_with(text, prefix)
  return text:sub(1, #prefix) == prefix
end

local OWN_COLORS = {}
for _, color in ipairs(M.MARKER_COLORS) do
  OWN_COLORS[color] = true
end

--- A marker this script made: its custom data is the bridge's JSON object, or, where Resolve
--- dropped the custom data (a timeline rebuilt from OTIO, as Render's new timeline is), its note
--- ends with the line the bridge writes (`MARKER_NOTE_TAG`) and its colour is a speed class's.
function M.is_own_marker(custom_data, note, color)
  if own_custom_data(custom_data) then
    return true
  end
  return OWN_COLORS[color] == true and starts_with(last_line(note), M.MARKER_NOTE_TAG)
end

-- Whether a marker of ours is replaced: it belongs to a clip detected this time, or to none of the
-- clips listed (gone, or moved). Markers of clips listed but not analysed this time are kept. A
-- marker belongs to a clip when its custom data starts with the clip's `marker_key`, or, without
-- our custom data, when its note's last line is the clip's `note_key`.
local function replaced(info, clips)
  local by_custom_data = own_custom_data(info.customData)
  local listed = false
  for _, clip in ipairs(clips or {}) do
    local owns
    if by_custom_data then
      owns = type(clip.marker_key) == "string" and starts_with(info.customData, clip.marker_key)
    else
      owns = type(clip.note_key) == "string" and last_line(info.note) == clip.note_key
    end
    if owns then
      if clip.status == "detected" then
        return true
      end
      listed = true
    end
  end
  return not listed
end

--- Put `markers` on the timeline, replacing this script's earlier markers of the clips detected
--- this time (`clips`: the reply's per-clip report); a user's markers are never touched, nor ours
--- of clips not analysed this time. Returns removed, added, skipped names, kept.
function M.apply_markers(timeline, markers, clips)
  local removed, added, skipped, kept = 0, 0, {}, 0
  local frames = {}
  for frame, info in pairs(timeline:GetMarkers() or {}) do
    if M.is_own_marker(info.customData, info.note, info.color) then
      if replaced(info, clips) then
        frames[#frames + 1] = frame
      else
        kept = kept + 1
      end
    end
  end
  table.sort(frames)
  for _, frame in ipairs(frames) do
    if timeline:DeleteMarkerAtFrame(math.floor(frame)) then
      removed = removed + 1
    end
  end
  for _, marker in ipairs(markers or {}) do
    local placed = false
    for shift = 0, marker.duration - 1 do
      if timeline:AddMarker(marker.frame + shift, marker.color, marker.name, marker.note,
          marker.duration - shift, marker.custom_data) then
        added = added + 1
        placed = true
        break
      end
    end
    if not placed then
      skipped[#skipped + 1] = marker.name .. " at frame " .. marker.frame
    end
  end
  return removed, added, skipped, kept
end

function M.flagged_clips(timeline, flag)
  local clips = M.array()
  local start = timeline:GetStartFrame()
  for index = 1, timeline:GetTrackCount("video") or 0 do
    for _, item in ipairs(timeline:GetItemListInTrack("video", index) or {}) do
      for _, color in ipairs(item:GetFlagList() or {}) do
        if color == flag then
          clips[#clips + 1] = { track = "V" .. index, record_start_frame = item:GetStart() - start }
          break
        end
      end
    end
  end
  return clips
end

-- `owner:method(kind, index)` (or `owner:method()`), or nil where this Resolve lacks the method.
local function ask(owner, method, kind, index)
  local ok, result = pcall(function()
    if kind == nil then
      return owner[method](owner)
    end
    return owner[method](owner, kind, index)
  end)
  if ok then
    return result
  end
  return nil
end

--- Video clips that do not play (a disabled clip, or a clip on a disabled track), as the bridge
--- names clips.
function M.disabled_clips(timeline)
  local found = M.array()
  local start = timeline:GetStartFrame()
  for index = 1, timeline:GetTrackCount("video") or 0 do
    local track_off = ask(timeline, "GetIsTrackEnabled", "video", index) == false
    for _, item in ipairs(timeline:GetItemListInTrack("video", index) or {}) do
      if track_off or ask(item, "GetClipEnabled") == false then
        found[#found + 1] = { track = "V" .. index, record_start_frame = item:GetStart() - start,
          what = track_off and "track" or "clip" }
      end
    end
  end
  return found
end

M.FOLDER_NAME_MAX_BYTES = 80
local RESERVED = { CON = true, PRN = true, AUX = true, NUL = true }
for number = 1, 9 do
  RESERVED["COM" .. number], RESERVED["LPT" .. number] = true, true
end

--- A project's or timeline's name as a folder name, byte for byte as the Python script's
--- `folder_name` (and the bridge's): ASCII letters and digits, `-`, `_` and every byte beyond
--- ASCII (UTF-8 accents, other scripts) are kept; each run of anything else becomes one `_`; no
--- `_` at either end; at most 80 bytes, cut between characters; a `_` after a name Windows keeps
--- for a device; `fallback` when nothing is left.
function M.folder_name(name, fallback)
  local kept = tostring(name or ""):gsub("[^A-Za-z0-9_%-\128-\255]+", "_")
  kept = kept:gsub("^_+", ""):gsub("_+$", "")
  if #kept > M.FOLDER_NAME_MAX_BYTES then
    kept = kept:sub(1, M.FOLDER_NAME_MAX_BYTES)
    local first = #kept -- the first byte of the last character
    while first > 1 and kept:byte(first) >= 0x80 and kept:byte(first) < 0xC0 do
      first = first - 1
    end
    local lead = kept:byte(first)
    local length = lead >= 0xF0 and 4 or lead >= 0xE0 and 3 or lead >= 0xC0 and 2 or 1
    if #kept - first + 1 < length then
      kept = kept:sub(1, first - 1)
    end
    kept = kept:gsub("_+$", "")
  end
  if kept == "" then
    return fallback
  end
  return RESERVED[kept:upper()] and kept .. "_" or kept
end

--- The one folder every render of this project's timeline goes to (so that a second run resumes
--- the first): `<render_dir>/<project>/<timeline>`, or without a render_dir the relative
--- `<project>/<timeline>`, which the bridge puts in Chronoscope's data folder.
function M.render_output_dir(settings, project, timeline)
  local relative = M.folder_name(project:GetName(), "project") .. SEP
    .. M.folder_name(timeline:GetName(), "timeline")
  if settings.render_dir then
    return settings.render_dir .. SEP .. relative
  end
  return relative
end

local function path_key(path)
  local key = tostring(path):gsub("[/\\]+", "/")
  return WINDOWS and key:lower() or key
end

local function chronoscope_bin(pool)
  local root = pool:GetRootFolder()
  for _, folder in ipairs(root:GetSubFolderList() or {}) do
    if folder:GetName() == M.BIN_NAME then
      return folder
    end
  end
  local folder = pool:AddSubFolder(root, M.BIN_NAME)
  if not folder then
    fail("Resolve could not create the '" .. M.BIN_NAME .. "' bin in the media pool")
  end
  return folder
end

local function all_folders(folder, found)
  found = found or {}
  found[#found + 1] = folder
  for _, sub in ipairs(folder:GetSubFolderList() or {}) do
    all_folders(sub, found)
  end
  return found
end

--- The media pool's items by the file they hold (their "File Path" clip property).
local function pool_items_by_path(pool)
  local found = {}
  for _, folder in ipairs(all_folders(pool:GetRootFolder())) do
    for _, item in ipairs(folder:GetClipList() or {}) do
      local properties = item:GetClipProperty() or {} -- all of them: naming one is deprecated (Resolve 20)
      local path = type(properties) == "table" and properties["File Path"] or nil
      if type(path) == "string" and path ~= "" and not found[path_key(path)] then
        found[path_key(path)] = item
      end
    end
  end
  return found
end

local function unique_timeline_name(project, wanted)
  local names = {}
  for index = 1, project:GetTimelineCount() or 0 do
    local timeline = project:GetTimelineByIndex(index)
    if timeline then
      names[timeline:GetName()] = true
    end
  end
  local name, number = wanted, 2
  while names[name] do
    name = wanted:sub(1, -2) .. " " .. number .. ")"
    number = number + 1
  end
  return name
end

-- ------------------------------------------------------------------ workflows

local workflows = {}

function workflows.detect(app, settings, say, echo)
  local _, timeline = M.current_timeline(app)
  say("analysing timeline '" .. timeline:GetName() .. "'")
  local path = M.export_timeline(app, timeline)
  local request = { op = "detect", timeline = path, disabled = M.disabled_clips(timeline) }
  local ok, reply = pcall(M.call_bridge, settings, request, echo)
  os.remove(path)
  if not ok then
    error(reply, 0)
  end
  local done = 0
  for _, clip in ipairs(reply.clips or {}) do
    if clip.status == "detected" then
      done = done + 1
    end
    say(clip.track .. " " .. clip.clip .. ": " .. tostring(clip.summary or clip.message or clip.status))
  end
  if reply.stopped then
    say(reply.stopped .. "; the " .. done .. " clips analysed before that get their markers")
  end
  local removed, added, skipped, kept = M.apply_markers(timeline, reply.markers, reply.clips)
  local line = added .. (added == 1 and " marker" or " markers") .. " added, " .. removed
    .. " earlier Chronoscope " .. (removed == 1 and "marker" or "markers") .. " replaced"
  if kept > 0 then
    line = line .. ", " .. kept .. " kept (their clips were not analysed this time)"
  end
  say(line)
  for _, name in ipairs(skipped) do
    say("no free frame for marker " .. name)
  end
  return reply
end

function workflows.render(app, settings, say, echo)
  local project, timeline = M.current_timeline(app)
  local flag = settings.render_flag or M.DEFAULT_RENDER_FLAG
  say("rendering slow motion for timeline '" .. timeline:GetName() .. "'")
  local path = M.export_timeline(app, timeline)
  local request = { op = "render", timeline = path, clips = M.flagged_clips(timeline, flag), flag = flag,
    disabled = M.disabled_clips(timeline) }
  request.output_dir = M.render_output_dir(settings, project, timeline)
  local ok, reply = pcall(M.call_bridge, settings, request, echo)
  os.remove(path)
  if not ok then
    error(reply, 0)
  end
  local pool = project:GetMediaPool()
  local previous = pool:GetCurrentFolder()
  pool:SetCurrentFolder(chronoscope_bin(pool))
  -- a file already in the media pool (an earlier run's render) is used as it is
  local known, new = pool_items_by_path(pool), {}
  for _, media in ipairs(reply.media or {}) do
    if not known[path_key(media)] then
      new[#new + 1] = media
    end
  end
  local imported = #new > 0 and (pool:ImportMedia(new) or {}) or {}
  if #imported < #new then
    say("Resolve imported " .. #imported .. " of " .. #new .. " rendered files")
  end
  if #new < #(reply.media or {}) then
    say((#reply.media - #new) .. " rendered files were in the media pool already")
  end
  local name = unique_timeline_name(project, timeline:GetName() .. " (Chronoscope)")
  local created = pool:ImportTimelineFromFile(reply.timeline, {
    timelineName = name,
    importSourceClips = false,
    sourceClipsFolders = all_folders(pool:GetRootFolder()),
  })
  if previous then
    pool:SetCurrentFolder(previous)
  end
  if not created then
    fail("Resolve could not import the rendered timeline " .. reply.timeline
      .. "; import it with File > Import > Timeline")
  end
  project:SetCurrentTimeline(created)
  say(reply.summary or (#(reply.clips or {}) .. " clips rendered into " .. tostring(reply.output_dir)))
  for _, clip in ipairs(reply.not_rendered or {}) do
    say("not rendered: " .. tostring(clip.track) .. " " .. tostring(clip.clip) .. ": " .. tostring(clip.reason))
  end
  say("new timeline '" .. created:GetName() .. "'; media in the '" .. M.BIN_NAME .. "' bin")
  return reply
end

function workflows.preview(app, settings, say, echo)
  local _, timeline = M.current_timeline(app)
  local path = M.export_timeline(app, timeline)
  local request = { op = "open_preview", timeline = path }
  if settings.screenshot then
    request.screenshot = settings.screenshot
    request.wait = true
  end
  local reply = M.call_bridge(settings, request, echo)
  say("preview app started on '" .. timeline:GetName() .. "' (pid " .. tostring(reply.pid) .. ")")
  return reply
end

M.workflows = workflows

--- Run one workflow as a Resolve script; returns true, or false after printing a clear message.
function M.run(action, given_resolve)
  local title = M.TITLES[action]
  local function say(text)
    print(title .. ": " .. text)
  end
  local function echo(text)
    print("  " .. text)
  end
  local ok, problem = pcall(function()
    local settings = M.load_settings()
    local app = M.get_resolve(given_resolve)
    return workflows[action](app, settings, say, echo)
  end)
  if ok then
    return true
  end
  if type(problem) == "table" and problem.user then
    say("error: " .. problem.user)
    return false
  end
  error(problem, 0)
end

return M
