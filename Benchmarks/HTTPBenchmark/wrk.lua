-- wrk script for Benchmarks/HTTPBenchmark/run.sh.
-- MODE: bare | member | device | metered | cold | signin; TOKENS: a file of bearer tokens
-- (signin: of "email<TAB>password" lines).
-- member/device cycle through their tokens; cold gives every request a token never used
-- before (each thread takes its own stripe of the file); metered asks for a new article
-- on every request, so each check records a read; signin posts a real account's email and
-- password to /v1/sessions, cycling through the accounts (every sign-in succeeds, so the
-- failed-sign-in throttle never applies; past the session cap the oldest session ends).
local mode = os.getenv("MODE") or "bare"
local file = os.getenv("TOKENS")
local tokens = {}
local counter = 0
-- A global, not a local: setup() gives each thread its own with thread:set, which sets
-- the thread's global. Until the eighth session this was a local, which shadowed it: every
-- thread had id 0 and sent the very same requests, so half the metered checks were re-reads
-- of an article just read (which write nothing) and half the cold tokens were another
-- thread's (BENCHMARKS.md). run.sh now checks both.
id = 0
local threads = 1

function setup(thread)
  thread:set("id", id)
  id = id + 1
end

function init(args)
  threads = tonumber(os.getenv("THREADS") or "2")
  if file and file ~= "" then
    for line in io.lines(file) do tokens[#tokens + 1] = line end
  end
end

local function json_string(text)
  -- gsub returns the count too: the parentheses keep the string only.
  local escaped = (text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
  return '"' .. escaped .. '"'
end

function request()
  counter = counter + 1
  if mode == "signin" then
    local email, password = tokens[(counter + id * 3) % #tokens + 1]:match("^([^\t]+)\t(.*)$")
    local body = '{"email":' .. json_string(email) .. ',"password":' .. json_string(password) .. ',"deviceName":"wrk"}'
    return wrk.format("POST", "/v1/sessions", { ["Content-Type"] = "application/json" }, body)
  end
  local headers = { ["Content-Type"] = "application/json" }
  local article = "a" .. (counter % 50)
  if #tokens > 0 then
    local index
    if mode == "cold" then
      index = ((counter - 1) * threads + id) % #tokens + 1
    else
      index = (counter * 7 + id * 131) % #tokens + 1
    end
    headers["Authorization"] = "Bearer " .. tokens[index]
  end
  if mode == "metered" then article = "m" .. id .. "-" .. counter end
  local body = '{"title":"euronews","article":{"id":"' .. article .. '"}}'
  local path = (mode == "bare" and "/bare") or (mode == "bare-body" and "/bare-body") or "/v1/access"
  return wrk.format("POST", path, headers, body)
end
