-- wrk script for bench/proxy.sh: the FolderSync POST a phone sends (SyncKey 0),
-- and one machine-readable line at the end.
wrk.method = "POST"
wrk.path = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=BENCH1&DeviceType=iPhone"
wrk.body = "\x03\x01\x6a\x00\x00\x07\x56\x52\x03\x30\x00\x01\x01"
wrk.headers["Authorization"] = "Basic YWxpY2U6c2VjcmV0" -- alice:secret
wrk.headers["MS-ASProtocolVersion"] = "14.1"
wrk.headers["Content-Type"] = "application/vnd.ms-sync.wbxml"
wrk.headers["User-Agent"] = "Apple-iPhone/1402.100"

done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d\n",
		summary.requests / (summary.duration / 1e6), latency:percentile(50),
		latency:percentile(99), summary.requests,
		e.connect + e.read + e.write + e.status + e.timeout))
end
