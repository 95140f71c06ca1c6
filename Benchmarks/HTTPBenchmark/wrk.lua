-- wrk script for Benchmarks/HTTPBenchmark/run.sh.
-- MODE: bare | member | device | metered | cold; TOKENS: a file of bearer tokens.
-- member/device cycle through their tokens; cold gives every request a token never used
-- before (each thread takes its own stripe of the file); metered asks for a new article
-- on every request, so each check records a read.
local mode = os.getenv("MODE") or "bare"
local file = os.getenv("TOKENS")
local tokens = {}
local counter = 0
local id = 0
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

function request()
  counter = counter + 1
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
