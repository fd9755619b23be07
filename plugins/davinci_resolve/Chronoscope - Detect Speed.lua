-- Chronoscope - Detect Speed (DaVinci Resolve, Workspace > Scripts), the Lua twin of the Python
-- script of the same name, for the free edition. The work is in chronoscope_resolve.lua beside it.

local function shared_module()
  local folders = {}
  local source = debug.getinfo(1, "S").source
  if source:sub(1, 1) == "@" then
    folders[#folders + 1] = source:sub(2):match("^(.*[/\\])") or ""
  end
  local home = os.getenv("HOME") or ""
  local appdata = os.getenv("APPDATA") or ""
  local roots = {
    home .. "/.local/share/DaVinciResolve/Fusion/Scripts/",
    home .. "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/",
    appdata .. "\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts\\",
  }
  for _, root in ipairs(roots) do
    folders[#folders + 1] = root .. "Utility" .. root:sub(-1)
    folders[#folders + 1] = root .. "Edit" .. root:sub(-1)
  end
  for _, folder in ipairs(folders) do
    local path = folder .. "chronoscope_resolve.lua"
    local handle = io.open(path, "rb")
    if handle then
      handle:close()
      return dofile(path)
    end
  end
  print("Chronoscope: chronoscope_resolve.lua is missing beside this script; re-run the Chronoscope installer")
  return nil
end

local shared = shared_module()
if shared then
  shared.run("detect", resolve)
end
