package main

import (
	"encoding/json"
	"net/http"
	"sync"
)

// counters lets tests assert how a tool talks to the host (e.g. "one Login per pipeline",
// "listing 2000 VMs takes a handful of RetrievePropertiesEx calls", "resume fetched only
// the missing bytes"). Served as GET /_ceso/stats, zeroed by POST /_ceso/reset.
type counters struct {
	mu          sync.Mutex
	soap        map[string]int64 // SOAP method name → calls
	soapTotal   int64
	http        map[string]int64 // "GET /folder" → requests
	httpBytes   int64            // response body bytes sent for those requests
	httpBytesIn int64            // request body bytes received (uploads)
	// The host's own clients (vim-cmd & co. behind SSH, license.go) are counted apart:
	// their calls are not the tool's round trips.
	localSOAP map[string]int64
	localHTTP map[string]int64
}

func newCounters() *counters {
	c := &counters{}
	c.reset()
	return c
}

func (c *counters) reset() {
	c.mu.Lock()
	c.soap = map[string]int64{}
	c.http = map[string]int64{}
	c.localSOAP = map[string]int64{}
	c.localHTTP = map[string]int64{}
	c.soapTotal, c.httpBytes, c.httpBytesIn = 0, 0, 0
	c.mu.Unlock()
}

func (c *counters) countSOAP(method string) {
	c.mu.Lock()
	c.soap[method]++
	c.soapTotal++
	c.mu.Unlock()
}

func (c *counters) countLocal(kind, key string) {
	c.mu.Lock()
	if kind == "soap" {
		c.localSOAP[key]++
	} else {
		c.localHTTP[key]++
	}
	c.mu.Unlock()
}

func (c *counters) countHTTP(key string) {
	c.mu.Lock()
	c.http[key]++
	c.mu.Unlock()
}

func (c *counters) addHTTPBytes(out, in int64) {
	c.mu.Lock()
	c.httpBytes += out
	c.httpBytesIn += in
	c.mu.Unlock()
}

func (c *counters) serveJSON(w http.ResponseWriter) {
	c.mu.Lock()
	snapshot := struct {
		SOAP        map[string]int64 `json:"soap"`
		SOAPTotal   int64            `json:"soap_total"`
		HTTP        map[string]int64 `json:"http"`
		HTTPBytes   int64            `json:"http_bytes"`
		HTTPBytesIn int64            `json:"http_bytes_in"`
		LocalSOAP   map[string]int64 `json:"local_soap"`
		LocalHTTP   map[string]int64 `json:"local_http"`
	}{copyMap(c.soap), c.soapTotal, copyMap(c.http), c.httpBytes, c.httpBytesIn,
		copyMap(c.localSOAP), copyMap(c.localHTTP)}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, snapshot)
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
