-- wrk script for bench/native.sh: each device's no-change Sync of the Inbox (its
-- current SyncKey, GetChanges), the devices in turn, and one machine-readable line.
--   wrk ... -s bench/native_sync.lua URL -- PATH BODIES
-- PATH: the ActiveSync path; BODIES: the lines "DEVICEID HEXBODY ..." written
-- by bench/native_clients.py prep.
local path, bodies = "/Microsoft-Server-ActiveSync", nil
local devs, reqs = {}, {}
local i = 0
local headers = {
	["Authorization"] = "Basic YWxpY2U6c2VjcmV0", -- alice:secret
	["MS-ASProtocolVersion"] = "14.1",
	["Content-Type"] = "application/vnd.ms-sync.wbxml",
	["User-Agent"] = "Apple-iPhone/1402.100",
	["X-MS-PolicyKey"] = "0",
}

init = function(args)
	path = args[1] or path
	bodies = args[2]
	for line in io.lines(bodies) do
		local dev, hex = line:match("^(%S+) (%x+)")
		if dev then
			local body = hex:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end)
			reqs[#reqs + 1] = wrk.format("POST",
				string.format("%s?Cmd=Sync&User=alice&DeviceId=%s&DeviceType=iPhone", path, dev),
				headers, body)
		end
	end
	assert(#reqs > 0, "no devices in " .. tostring(bodies))
end

request = function()
	i = i % #reqs + 1
	return reqs[i]
end

done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d status=%d read=%d\n",
		summary.requests / (summary.duration / 1e6), latency:percentile(50),
		latency:percentile(99), summary.requests,
		e.connect + e.read + e.write + e.status + e.timeout, e.status, e.read))
end
