package main

// Hostile answers for the tests of ceso's limits on what a host may send (rules of
// /_ceso/fail, see faults.go):
//
//	{"method":"RetrieveServiceContent","nest":1000000}       the answer with 1,000,000
//	                                                          nested elements inside <returnval>
//	{"method":"RetrievePropertiesEx","nest":600,"nest_in":"val"}   … inside the first <val>
//	{"method":"Login","fault":"InvalidLogin","nest":100000}  … inside a fault's <detail>
//	{"method":"RetrieveServiceContent","endless":true}       a body that never ends
//	{"method":"Login","trickle_bps":2}                        the normal answer, 2 bytes a second
//	{"http":"GET /folder","trickle_bps":2}                    a datastore file, 2 bytes a second
//	{"method":"X","fault":"SystemError","message":"A","message_repeat":10485760}  a 10 MiB fault string
//	{"http":"GET /folder","status":503,"body":"\u001b[2Jbusy\n"}  an error page of our choosing
//	{"method":"QueryChangedDiskAreas","change_length":N,"change_areas":"S:L,S:L"}  this DiskChangeInfo

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// serveInjectedSOAP carries out a SOAP rule that matched. It returns the writer the
// normal answer must go to (w, or a trickling wrapper of it), or nil once it has
// answered itself.
func (f *front) serveInjectedSOAP(w http.ResponseWriter, r *http.Request, call soapCall, body []byte,
	inj *injection) http.ResponseWriter {
	if inj.StallMS > 0 && inj.Fault == "" {
		time.Sleep(time.Duration(inj.StallMS) * time.Millisecond)
	}
	if inj.Fault != "" && inj.MessageRepeat > 1 {
		c := *inj
		msg := c.Message
		if msg == "" {
			msg = "Injected fault " + c.Fault
		}
		c.Message = strings.Repeat(msg, c.MessageRepeat)
		inj = &c
	}
	switch {
	case call.Method == "QueryChangedDiskAreas" && (inj.ChangeAreas != "" || inj.ChangeLength != 0):
		serveChangeInfo(w, inj) // cbt.go
		return nil
	case inj.TrickleBPS > 0:
		return &trickleWriter{ResponseWriter: w, bps: inj.TrickleBPS}
	case inj.Nest > 0 || inj.Endless:
		var rec *httptest.ResponseRecorder
		if inj.Fault != "" {
			rec = httptest.NewRecorder()
			f.inject(rec, call, inj)
		} else {
			rec = f.record(r, body, call.Method)
		}
		serveHostile(w, rec, inj)
		return nil
	case inj.Fault != "":
		f.inject(w, call, inj)
		return nil
	}
	return w
}

// serveHostile sends a recorded answer with deep nesting or an endless body put in
// after the start tag of the rule's nest_in element (default: returnval, else a
// fault's detail, else Body).
func serveHostile(w http.ResponseWriter, rec *httptest.ResponseRecorder, inj *injection) {
	answer := rec.Body.Bytes()
	names := []string{"returnval", "detail", "Body"}
	if inj.NestIn != "" {
		names = []string{inj.NestIn}
	}
	at := -1
	for _, n := range names {
		if at = afterStartTag(answer, n); at >= 0 {
			break
		}
	}
	if at < 0 {
		at = len(answer)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	if _, err := w.Write(answer[:at]); err != nil {
		return
	}
	if inj.Endless {
		_, _ = w.Write([]byte("<endless>"))
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for { // until the client gives up and the write fails
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	if writeRepeated(w, "<n>", inj.Nest) != nil || writeRepeated(w, "</n>", inj.Nest) != nil {
		return
	}
	_, _ = w.Write(answer[at:])
}

// afterStartTag is the offset just after the first start tag whose local name is
// name (not an empty-element tag), or -1.
func afterStartTag(doc []byte, name string) int {
	for i := 0; i < len(doc); i++ {
		if doc[i] != '<' {
			continue
		}
		k := i + 1
		for k < len(doc) && doc[k] != ' ' && doc[k] != '>' && doc[k] != '/' {
			k++
		}
		tag := string(doc[i+1 : k])
		if c := strings.LastIndexByte(tag, ':'); c >= 0 {
			tag = tag[c+1:]
		}
		if tag != name {
			continue
		}
		end := bytes.IndexByte(doc[k:], '>')
		if end < 0 {
			return -1
		}
		if doc[k+end-1] == '/' {
			continue
		}
		return k + end + 1
	}
	return -1
}

func writeRepeated(w http.ResponseWriter, s string, n int) error {
	const per = 16 << 10
	block := []byte(strings.Repeat(s, per))
	for n > 0 {
		k := n
		if k > per {
			k = per
		}
		if _, err := w.Write(block[:k*len(s)]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// trickleWriter sends what it is given bps bytes a second: a host on a dying link.
type trickleWriter struct {
	http.ResponseWriter
	bps int
}

func (t *trickleWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		k := len(p) - done
		if k > t.bps {
			k = t.bps
		}
		n, err := t.ResponseWriter.Write(p[done : done+k])
		done += n
		if err != nil {
			return done, err
		}
		flush(t.ResponseWriter)
		time.Sleep(time.Second)
	}
	return done, nil
}

// flush pushes out what w buffered, also through a countingWriter (which hides
// its ResponseWriter's Flush).
func flush(w http.ResponseWriter) {
	if cw, ok := w.(*countingWriter); ok {
		w = cw.ResponseWriter
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// writeInjectedStatus answers an HTTP rule's status, with its body if it has one.
func writeInjectedStatus(w http.ResponseWriter, inj *injection) {
	if inj.Body == "" {
		http.Error(w, "injected "+strconv.Itoa(inj.Status), inj.Status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(inj.Status)
	_, _ = w.Write([]byte(inj.Body))
}

// httpWriter is where a /folder answer goes under an HTTP rule that is not a status.
func httpWriter(cw *countingWriter, inj *injection) http.ResponseWriter {
	if inj.TrickleBPS > 0 {
		return &trickleWriter{ResponseWriter: cw, bps: inj.TrickleBPS}
	}
	return cw
}
