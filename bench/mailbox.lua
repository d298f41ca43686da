-- wrk script for bench/mailbox.sh: a phone's FolderSync POST (SyncKey 0), the
-- DeviceId rotating over N ids (PREFIX00 ..), and one machine-readable line.
--   wrk ... -s bench/mailbox.lua URL -- PATH-PREFIX DEVICE-PREFIX N
-- PATH-PREFIX: the ActiveSync path (/Microsoft-Server-ActiveSync, or SOGo's
-- /SOGo/Microsoft-Server-ActiveSync).
local path, prefix, n = "/Microsoft-Server-ActiveSync", "BENCHM", 20
local i = 0
local body = "\x03\x01\x6a\x00\x00\x07\x56\x52\x03\x30\x00\x01\x01"
local headers = {
	["Authorization"] = "Basic YWxpY2U6c2VjcmV0", -- alice:secret
	["MS-ASProtocolVersion"] = "14.1",
	["Content-Type"] = "application/vnd.ms-sync.wbxml",
	["User-Agent"] = "Apple-iPhone/1402.100",
	["X-MS-PolicyKey"] = "0",
}

init = function(args)
	path = args[1] or path
	prefix = args[2] or prefix
	n = tonumber(args[3] or n)
end

request = function()
	i = (i + 1) % n
	return wrk.format("POST", string.format("%s?Cmd=FolderSync&User=alice&DeviceId=%s%02d&DeviceType=iPhone",
		path, prefix, i), headers, body)
end

done = function(summary, latency, requests)
	local e = summary.errors
	-- status: non-2xx answers; read: the server closed the connection (SOGo closes
	-- after every answer, so each of its requests counts one; wrk reconnects).
	io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d status=%d read=%d\n",
		summary.requests / (summary.duration / 1e6), latency:percentile(50),
		latency:percentile(99), summary.requests,
		e.connect + e.read + e.write + e.status + e.timeout, e.status, e.read))
end
