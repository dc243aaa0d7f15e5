package main

// A datastore that fills up during an upload: {"http":"PUT /folder","after_bytes":N,
// "status":507,"body":"No space left on device"} writes the first N bytes of the body
// into the file (a real host keeps what it wrote before the disk was full), then
// answers the status instead of vcsim's 200 and closes the connection without reading
// the rest.

import (
	"errors"
	"io"
	"net/http"
)

var errDatastoreFull = errors.New("datastore full (injected)")

type fullReader struct {
	io.ReadCloser
	left int64
}

func (r *fullReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errDatastoreFull
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}

// statusOnly swallows vcsim's answer; the injected one is written afterwards.
type statusOnly struct{ h http.Header }

func (s *statusOnly) Header() http.Header         { return s.h }
func (s *statusOnly) Write(p []byte) (int, error) { return len(p), nil }
func (s *statusOnly) WriteHeader(int)             {}

func (f *front) serveFullUpload(w http.ResponseWriter, r *http.Request, inj *injection) {
	r.Body = &fullReader{ReadCloser: r.Body, left: inj.AfterBytes}
	f.inner.ServeHTTP(&statusOnly{h: http.Header{}}, r)
	w.Header().Set("Connection", "close")
	writeInjectedStatus(w, inj)
}
