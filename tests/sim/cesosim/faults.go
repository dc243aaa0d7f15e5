package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// injection is one rule posted to /_ceso/fail. Either a SOAP rule:
//
//	{"method":"CopyVirtualDisk_Task","fault":"FileFault","message":"injected","count":1}
//
// (add "task":true to get a task that ends in that error instead of a SOAP fault, the
// way most real failures of *_Task methods arrive; "file" fills FileFault.file), or an
// HTTP rule for the datastore file server:
//
//	{"http":"GET /folder","after_bytes":1048576,"count":1}   cut the connection
//	{"http":"PUT /folder","status":503}                       answer with a status
//	{"http":"PUT /folder","after_bytes":1048576}              cut an upload mid-way
//	{"http":"PUT /folder","after_bytes":1048576,"stall_ms":30000}  stop reading it a while
//	{"http":"PUT /folder","flip_at":4096}                    store byte 4096 inverted
//	{"http":"GET /folder","flip_at":4096,"count":-1}         serve byte 4096 of the file inverted
//
// optionally restricted to URL paths containing "path". A method rule with only
// "stall_ms" ({"method":"CreateVM_Task","stall_ms":3000}) answers normally after the
// pause: a slow host, for interrupt tests. Hostile hosts (hostile.go): "nest":N
// (N nested elements after the start tag of "nest_in", default returnval, or a
// fault's detail), "endless":true (a body that never ends), "trickle_bps":N (the
// normal answer, N bytes a second; also for "GET /folder"), "message_repeat":N (the
// fault message N times), "body" (the page sent with an HTTP rule's status). count
// defaults to 1; -1 means until cleared. Posting {} clears every rule.
type injection struct {
	Method     string `json:"method,omitempty"`
	Fault      string `json:"fault,omitempty"`
	Message    string `json:"message,omitempty"`
	File       string `json:"file,omitempty"`
	Task       bool   `json:"task,omitempty"`
	HTTP       string `json:"http,omitempty"`
	Path       string `json:"path,omitempty"`
	AfterBytes int64  `json:"after_bytes,omitempty"`
	Status     int    `json:"status,omitempty"`
	StallMS    int    `json:"stall_ms,omitempty"`
	FlipAt     *int64 `json:"flip_at,omitempty"` // silent corruption at this body offset
	Count      *int   `json:"count,omitempty"`
	// Hostile hosts (hostile.go).
	Nest          int    `json:"nest,omitempty"`
	NestIn        string `json:"nest_in,omitempty"`
	Endless       bool   `json:"endless,omitempty"`
	TrickleBPS    int    `json:"trickle_bps,omitempty"`
	MessageRepeat int    `json:"message_repeat,omitempty"`
	Body          string `json:"body,omitempty"`
	// QueryChangedDiskAreas: answer this DiskChangeInfo (cbt.go).
	ChangeStart  int64  `json:"change_start,omitempty"`
	ChangeLength int64  `json:"change_length,omitempty"`
	ChangeAreas  string `json:"change_areas,omitempty"` // "START:LENGTH,…"
}

type injector struct {
	mu    sync.Mutex
	rules []*injection
}

// post applies a /_ceso/fail body: {} clears, anything else adds a rule.
func (in *injector) post(body []byte) error {
	var r injection
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // a typo must not silently inject nothing
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("bad injection JSON: %v", err)
	}
	if r == (injection{}) {
		in.mu.Lock()
		in.rules = nil
		in.mu.Unlock()
		return nil
	}
	if r.Count == nil {
		one := 1
		r.Count = &one
	}
	if *r.Count == 0 || *r.Count < -1 {
		return fmt.Errorf("count must be positive, or -1 for until cleared")
	}
	if err := r.checkHostile(); err != nil {
		return err
	}
	switch {
	case r.Method != "" && r.HTTP != "":
		return fmt.Errorf("give either method or http, not both")
	case r.Method == "QueryChangedDiskAreas" && r.Fault == "" && (r.ChangeAreas != "" || r.ChangeLength != 0):
		// A DiskChangeInfo of the test's choosing (cbt.go).
		if strings.Trim(r.ChangeAreas, "0123456789-:,") != "" {
			return fmt.Errorf("change_areas must look like \"START:LENGTH,START:LENGTH\"")
		}
	case r.Method != "" && r.Fault == "" && (r.StallMS > 0 || r.Nest > 0 || r.Endless || r.TrickleBPS > 0):
		// A slow or hostile answer instead of the normal one.
	case r.Method != "":
		if r.Fault == "" {
			return fmt.Errorf("a method rule needs a fault type name, e.g. \"fault\":\"FileFault\" (or stall_ms, nest, endless, trickle_bps)")
		}
		if _, err := newFault(r.Fault, ""); err != nil {
			return err
		}
		if r.Task && !strings.HasSuffix(r.Method, "_Task") {
			return fmt.Errorf("\"task\":true needs a *_Task method, not %q", r.Method)
		}
	case r.HTTP != "":
		if len(strings.Fields(r.HTTP)) != 2 {
			return fmt.Errorf("http must look like \"GET /folder\", not %q", r.HTTP)
		}
		if r.FlipAt != nil {
			if *r.FlipAt < 0 || r.AfterBytes > 0 || r.Status > 0 || r.TrickleBPS > 0 || r.StallMS > 0 || r.Body != "" {
				return fmt.Errorf("flip_at is an offset (>= 0) and goes alone with http and path")
			}
			if r.HTTP != "GET /folder" && r.HTTP != "PUT /folder" {
				return fmt.Errorf("flip_at is for \"GET /folder\" and \"PUT /folder\"")
			}
			break
		}
		fullPut := strings.HasPrefix(r.HTTP, "PUT ") && r.AfterBytes > 0 && r.Status > 0 && r.StallMS == 0 // fullput.go
		if n := btoi(r.AfterBytes > 0) + btoi(r.Status > 0) + btoi(r.TrickleBPS > 0); n != 1 && !fullPut {
			return fmt.Errorf("an http rule needs exactly one of after_bytes, status or trickle_bps")
		}
		if r.Body != "" && r.Status == 0 {
			return fmt.Errorf("body goes with status")
		}
		if r.Nest > 0 || r.Endless || r.MessageRepeat > 0 {
			return fmt.Errorf("nest, endless and message_repeat are for method rules")
		}
		if r.StallMS > 0 && r.AfterBytes <= 0 {
			return fmt.Errorf("stall_ms needs after_bytes")
		}
	default:
		return fmt.Errorf("give method or http (or {} to clear)")
	}
	in.mu.Lock()
	in.rules = append(in.rules, &r)
	in.mu.Unlock()
	return nil
}

// checkHostile validates the hostile-host fields (hostile.go).
func (r *injection) checkHostile() error {
	switch {
	case r.Nest < 0 || r.Nest > 10000000:
		return fmt.Errorf("nest must be 1 to 10000000")
	case r.Nest > 0 && r.Endless:
		return fmt.Errorf("give nest or endless, not both")
	case r.TrickleBPS < 0:
		return fmt.Errorf("trickle_bps must be positive")
	case r.TrickleBPS > 0 && (r.Fault != "" || r.Nest > 0 || r.Endless):
		return fmt.Errorf("trickle_bps slows the normal answer: not with fault, nest or endless")
	case r.TrickleBPS > 0 && r.HTTP != "" && r.HTTP != "GET /folder":
		return fmt.Errorf("trickle_bps is for SOAP methods and \"GET /folder\"")
	case r.NestIn != "" && r.Nest == 0 && !r.Endless:
		return fmt.Errorf("nest_in goes with nest or endless")
	case r.MessageRepeat < 0 || r.MessageRepeat > 64<<20:
		return fmt.Errorf("message_repeat must be 1 to %d", 64<<20)
	case r.MessageRepeat > 0 && r.Fault == "":
		return fmt.Errorf("message_repeat goes with fault")
	case r.Body != "" && r.HTTP == "":
		return fmt.Errorf("body is for http rules (with status)")
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (in *injector) list() []injection {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]injection, 0, len(in.rules))
	for _, r := range in.rules {
		c := *r
		n := *r.Count
		c.Count = &n
		out = append(out, c)
	}
	return out
}

// take consumes one use of the first rule that matches, oldest first.
func (in *injector) take(match func(*injection) bool) *injection {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, r := range in.rules {
		if !match(r) {
			continue
		}
		c := *r
		if *r.Count > 0 {
			*r.Count--
			if *r.Count == 0 {
				in.rules = append(in.rules[:i], in.rules[i+1:]...)
			}
		}
		return &c
	}
	return nil
}

func (in *injector) takeSOAP(method string) *injection {
	return in.take(func(r *injection) bool { return r.Method == method })
}

// takeHTTP matches key "GET /folder" against the rule's http field and the path filter.
func (in *injector) takeHTTP(key, urlPath string) *injection {
	return in.take(func(r *injection) bool {
		return r.HTTP != "" && strings.Join(strings.Fields(r.HTTP), " ") == key &&
			(r.Path == "" || strings.Contains(urlPath, r.Path))
	})
}
