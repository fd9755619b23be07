--[[
A small stub of Resolve's scripting API in Lua, for running the Lua scripts outside Resolve.

    lua5.4 run_lua_stub.lua MODE OTIO_PATH [REPLY_LUA ...]

MODE is `script:<path>` (run a Chronoscope Lua script with `resolve` set to the stub), `apply`
(apply the markers of bridge replies written with `--reply lua`, one after the other, as runs of
Detect would), or `none` (no project open; REPLY_LUA is then the script to run).
The stub's timeline "Cut 1" starts at frame 108000 (01:00:00:00 at 30 fps), has a user's marker
at frame 10 and a stale Chronoscope marker at frame 5, and `Export` copies OTIO_PATH (a real
export made by the Python fake). Its second clip (at frame 70) carries the flag named by
$STUB_FLAG (default Purple; empty: no flag). $STUB_DISABLED=1 disables its first clip (the stub
answers GetClipEnabled and GetIsTrackEnabled as Resolve does). $STUB_RUNS=N runs the script N times
on the same project (each from "Cut 1"), as an editor running it again would. In `apply` mode,
$STUB_THROUGH_OTIO=1 drops every marker's customData after each reply, as a timeline rebuilt from
Resolve's OTIO (whose markers keep colour, name and note only) would have them. Its media pool's ImportMedia returns
media pool items (those of the files that exist), put in the current folder, whose GetClipList
lists them and whose GetClipProperty answers "File Path" and "Clip Name". At the end every marker
and media pool call is printed, one per line (MARKER / CALL, tab separated), for the test to read.
--]]

local mode, otio_path, reply_path = arg[1], arg[2], arg[3]
local flag = os.getenv("STUB_FLAG") or "Purple"
local calls = {}

local function record(...)
  local parts = {}
  for i = 1, select("#", ...) do
    parts[#parts + 1] = tostring((select(i, ...)))
  end
  calls[#calls + 1] = table.concat(parts, "\t")
end

local COLORS = {}
for _, c in ipairs({ "Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose",
  "Lavender", "Sky", "Mint", "Lemon", "Sand", "Cocoa", "Cream" }) do
  COLORS[c] = true
end

local function new_timeline(name)
  local timeline = { name = name, markers = {}, items = {} }
  function timeline:GetName() return self.name end
  function timeline:GetStartFrame() return 108000 end
  function timeline:GetTrackCount(kind) return kind == "video" and 1 or 0 end
  function timeline:GetIsTrackEnabled(kind, index) return kind == "video" and index == 1 end
  function timeline:GetItemListInTrack(kind, index)
    if kind ~= "video" or index ~= 1 then return nil end
    return self.items
  end
  function timeline:GetMarkers()
    local copy = {}
    for frame, info in pairs(self.markers) do
      copy[frame + 0.0] = info
    end
    return copy
  end
  function timeline:AddMarker(frame, color, name, note, duration, custom)
    if self.markers[frame] or not COLORS[color] or duration < 1 or frame < 0 or frame >= 150 then
      return false
    end
    self.markers[frame] = { color = color, name = name, note = note, duration = duration + 0.0, customData = custom or "" }
    return true
  end
  function timeline:DeleteMarkerAtFrame(frame)
    if not self.markers[frame] then return false end
    self.markers[frame] = nil
    return true
  end
  function timeline:Export(path, kind)
    if kind ~= 23 then return false end
    local source = io.open(otio_path, "rb")
    if not source then return false end
    local text = source:read("*a")
    source:close()
    local target = io.open(path, "wb")
    if not target then return false end
    target:write(text)
    target:close()
    return true
  end
  return timeline
end

local function new_item(start, flags, enabled)
  local item = { start = start, flags = flags, enabled = enabled }
  function item:GetStart() return self.start end
  function item:GetFlagList() return self.flags end
  function item:GetClipEnabled() return self.enabled end
  return item
end

local timeline = new_timeline("Cut 1")
timeline.items = {
  new_item(108000, {}, os.getenv("STUB_DISABLED") ~= "1"),
  new_item(108070, flag ~= "" and { flag } or {}, true),
}
timeline.markers[10] = { color = "Blue", name = "user note", note = "mine", duration = 1.0, customData = "" }
timeline.markers[5] = { color = "Green", name = "old", note = "", duration = 3.0, customData = '{"chronoscope":1,"kind":"speed"}' }

local function new_folder(name)
  local folder = { name = name, subs = {}, clips = {} }
  function folder:GetName() return self.name end
  function folder:GetSubFolderList() return self.subs end
  function folder:GetClipList() return self.clips end
  return folder
end
local root = new_folder("Master")

-- A media pool item as ImportMedia returns it: GetClipProperty() answers every property as a
-- table, GetClipProperty(name) one of them ("" for none), as Resolve's scripting README says.
local function new_media_item(path)
  local item = { properties = { ["Clip Name"] = path:match("([^/\\]*)$"), ["File Path"] = path } }
  function item:GetName() return self.properties["Clip Name"] end
  function item:GetClipProperty(name)
    if name == nil or name == "" then
      local copy = {}
      for key, value in pairs(self.properties) do copy[key] = value end
      return copy
    end
    return self.properties[name] or ""
  end
  return item
end

local timelines = { timeline }
local current = timeline
local pool = { folder = root }
function pool:GetRootFolder() return root end
function pool:GetCurrentFolder() return self.folder end
function pool:SetCurrentFolder(folder) self.folder = folder; record("CALL", "SetCurrentFolder", folder:GetName()) return true end
function pool:AddSubFolder(parent, name)
  local folder = new_folder(name)
  parent.subs[#parent.subs + 1] = folder
  record("CALL", "AddSubFolder", name)
  return folder
end
-- Imports the files that exist into the current folder; returns their media pool items.
function pool:ImportMedia(paths)
  record("CALL", "ImportMedia", table.concat(paths, ";"))
  local items = {}
  for _, path in ipairs(paths) do
    local handle = io.open(path, "rb")
    if handle then
      handle:close()
      local item = new_media_item(path)
      self.folder.clips[#self.folder.clips + 1] = item
      items[#items + 1] = item
    end
  end
  return items
end
function pool:ImportTimelineFromFile(path, options)
  record("CALL", "ImportTimelineFromFile", path, options.timelineName, tostring(options.importSourceClips))
  local created = new_timeline(options.timelineName)
  timelines[#timelines + 1] = created
  return created
end

local project = {}
function project:GetName() return "demo" end
function project:GetMediaPool() return pool end
function project:GetCurrentTimeline() return current end
function project:SetCurrentTimeline(t) current = t; record("CALL", "SetCurrentTimeline", t:GetName()) return true end
function project:GetTimelineCount() return #timelines end
function project:GetTimelineByIndex(i) return timelines[i] end

local manager = {}
function manager:GetCurrentProject()
  if mode == "none" then return nil end
  return project
end

local stub = { EXPORT_OTIO = 23 }
function stub:GetProjectManager() return manager end

if mode:sub(1, 7) == "script:" then
  resolve = stub
  for _ = 1, tonumber(os.getenv("STUB_RUNS") or "1") do
    current = timeline
    dofile(mode:sub(8))
  end
elseif mode == "apply" then
  local here = debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./"
  local shared = dofile(here .. "../chronoscope_resolve.lua")
  for index = 3, #arg do
    local reply = dofile(arg[index])
    local removed, added, skipped, kept = shared.apply_markers(timeline, reply.markers, reply.clips)
    record("CALL", "apply", removed, added, #skipped, kept)
    if os.getenv("STUB_THROUGH_OTIO") == "1" then
      -- as a timeline rebuilt from Resolve's OTIO (Render's new timeline): no marker keeps its customData
      for _, marker in pairs(timeline.markers) do
        marker.customData = ""
      end
    end
  end
elseif mode == "none" then
  resolve = stub
  dofile(reply_path)
end

local frames = {}
for frame in pairs(timeline.markers) do
  frames[#frames + 1] = frame
end
table.sort(frames)
for _, frame in ipairs(frames) do
  local m = timeline.markers[frame]
  print(table.concat({ "MARKER", frame, m.color, m.name, m.duration, m.customData }, "\t"))
end
for _, line in ipairs(calls) do
  print(line)
end
