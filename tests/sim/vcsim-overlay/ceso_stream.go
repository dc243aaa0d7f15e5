package simulator

// This file is not part of govmomi. cesosim's build (tests/sim/simctl,
// link_simulator_package) puts it beside the files of Debian's packaged govmomi
// simulator package, in a GOPATH entry of its own, so that it can use the package's
// unexported session mapping and method dispatch. It adds one entry point,
// ServeSDKStreamed, which cesosim uses for RetrievePropertiesEx, the call whose answers
// grow with the inventory: vcsim's own ServeSDK encodes the whole answer into memory
// before its first byte, which on a big inventory is most of the call's time and
// memory. A client that parses as bytes arrive then has nothing to overlap with. The
// answer is byte for byte what ServeSDK would send.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// ServeSDKStreamed answers the SOAP request body (already read from r) like ServeSDK,
// encoding the answer straight onto w through a 64 KiB buffer. edit, if not nil, sees
// the method's result before it is encoded and returns what to send (cesosim's paging
// trims a RetrievePropertiesEx result there). session reports whether the request's
// cookie named a live session, before the call ran.
func (s *Service) ServeSDKStreamed(w http.ResponseWriter, r *http.Request, body []byte,
	edit func(method string, session bool, res soap.HasFault) soap.HasFault) {
	ctx := &Context{
		req:     r,
		res:     w,
		svc:     s,
		Map:     s.sdk[r.URL.Path],
		Context: context.Background(),
	}
	ctx.Map.WithLock(s.sm, ctx.mapSession)

	if Trace {
		fmt.Fprintf(TraceFile, "Request: %s\n", string(body))
	}

	var res soap.HasFault
	method, err := UnmarshalBody(ctx.Map.typeFunc, body)
	if err != nil {
		res = serverFault(err.Error())
	} else {
		ctx.Header = method.Header
		session := ctx.Session != nil
		res = s.call(ctx, method)
		if edit != nil {
			res = edit(method.Name, session, res)
		}
	}

	var soapBody interface{}
	status := http.StatusOK
	if f := res.Fault(); f != nil {
		status = http.StatusInternalServerError
		soapBody = struct {
			Fault *soapFault
		}{
			&soapFault{
				Code:   f.Code,
				String: f.String,
				Detail: struct {
					Fault *faultDetail
				}{&faultDetail{f.Detail.Fault}},
			},
		}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)

	var sink io.Writer = w
	var traced bytes.Buffer
	if Trace {
		sink = io.MultiWriter(w, &traced)
	}
	out := bufio.NewWriterSize(sink, 64<<10)
	if soapBody == nil {
		if b, ok := res.(*methods.RetrievePropertiesExBody); ok && b.Res != nil && FastEncoding {
			soapBody = &fastRetrieveResponse{ns: ctx.Map.Namespace, res: b.Res.Returnval, out: out}
		} else {
			soapBody = &response{ctx.Map.Namespace, res}
		}
	}
	fmt.Fprint(out, xml.Header)
	e := xml.NewEncoder(out)
	err = e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: soapBody,
	})
	if err == nil {
		err = e.Flush()
	}
	if err == nil {
		err = out.Flush()
	}
	if Trace {
		fmt.Fprintf(TraceFile, "Response: %s\n", traced.String())
	}
	if err != nil && method != nil {
		// The status line has gone: the client sees a cut answer, as from a host
		// whose connection broke.
		fmt.Fprintf(TraceFile, "error encoding %s response: %s\n", method.Name, err)
	}
}

// fastRetrieveResponse is the body of a RetrievePropertiesEx answer, written as
// response.MarshalXML writes it, with each object encoded by appendObjectContent
// (ceso_fastxml.go) straight onto out between the encoder's own tokens.
type fastRetrieveResponse struct {
	ns  string
	res *types.RetrieveResult
	out *bufio.Writer
}

func (r *fastRetrieveResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	inner := xml.StartElement{Name: xml.Name{Space: "urn:" + r.ns, Local: "RetrievePropertiesExResponse"}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(inner); err != nil {
		return err
	}
	if r.res != nil {
		if err := e.Flush(); err != nil {
			return err
		}
		buf := make([]byte, 0, 16<<10)
		buf = append(buf, "<returnval>"...)
		if r.res.Token != "" {
			buf = append(buf, "<token>"...)
			enc := fastEnc{buf: buf}
			enc.escape(r.res.Token)
			buf = append(enc.buf, "</token>"...)
		}
		for i := range r.res.Objects {
			var ok bool
			if buf, ok = appendObjectContent(buf, &r.res.Objects[i]); !ok {
				var err error
				if buf, err = govmomiObjectContent(buf, &r.res.Objects[i]); err != nil {
					return err
				}
			}
			if len(buf) >= 32<<10 {
				if _, err := r.out.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		buf = append(buf, "</returnval>"...)
		if _, err := r.out.Write(buf); err != nil {
			return err
		}
	}
	if err := e.EncodeToken(inner.End()); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}
