package main

import (
	"bytes"
	stdxml "encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// soapCall is what the front end needs to know about a request before vcsim sees it.
type soapCall struct {
	Method string                       // local name of the first child of soapenv:Body
	This   types.ManagedObjectReference // its <_this>, if any
}

// parseSOAPCall reads just enough of the envelope to route the call. It uses the standard
// library decoder (namespace-agnostic local names) and never fails hard: an unreadable
// body is left for vcsim to reject with its own fault.
func parseSOAPCall(body []byte) soapCall {
	var call soapCall
	dec := stdxml.NewDecoder(bytes.NewReader(body))
	depth := 0
	inBody := false
	bodyDepth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return call
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			depth++
			switch {
			case !inBody && t.Name.Local == "Body" && depth == 2:
				inBody, bodyDepth = true, depth
			case inBody && call.Method == "" && depth == bodyDepth+1:
				call.Method = t.Name.Local
			case inBody && call.Method != "" && depth == bodyDepth+2 && t.Name.Local == "_this":
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						call.This.Type = a.Value
					}
				}
				var s string
				if err := dec.DecodeElement(&s, &t); err != nil {
					return call
				}
				depth--
				call.This.Value = strings.TrimSpace(s)
				return call
			}
		case stdxml.EndElement:
			depth--
			if inBody && depth < bodyDepth {
				return call
			}
		}
	}
}

// findElementText returns the text of the first element with the given local name.
func findElementText(body []byte, local string) (string, bool) {
	dec := stdxml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if t, ok := tok.(stdxml.StartElement); ok && t.Name.Local == local {
			var s string
			if dec.DecodeElement(&s, &t) != nil {
				return "", false
			}
			return strings.TrimSpace(s), true
		}
	}
}

// The types below copy vcsim's (unexported) wire format in simulator/simulator.go, so
// that our faults and responses are byte-for-byte shaped like the ones vcsim sends:
// a "soapenv" envelope, and fault details named "<Type>Fault" with xsi:type="<Type>".

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type faultDetail struct {
	Fault types.AnyType
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

// methodResponse encodes a <FooResponse xmlns="urn:vim25"> element from a types.FooResponse.
type methodResponse struct {
	Res interface{}
}

func (r *methodResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	local := reflect.TypeOf(r.Res).Elem().Name()
	if n, ok := r.Res.(interface{ responseName() string }); ok {
		local = n.responseName() // types has no named type for every *_TaskResponse we build
	}
	res := xml.StartElement{Name: xml.Name{Space: "urn:" + vim25.Namespace, Local: local}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(r.Res, res); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func encodeEnvelope(body interface{}) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	return out.Bytes(), err
}

// writeFault sends a SOAP fault the way vcsim does: HTTP 500, faultcode ServerFaultCode.
func writeFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{Fault: fault}
	out, err := encodeEnvelope(struct{ Fault *soapFault }{f})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(out)
}

// writeResponse sends a successful method response; res is e.g. *types.FooResponse.
func writeResponse(w http.ResponseWriter, res interface{}) {
	out, err := encodeEnvelope(&methodResponse{Res: res})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// decodeResponse decodes a SOAP response produced by vcsim into body (a methods.FooBody).
func decodeResponse(data []byte, body soap.HasFault) error {
	env := soap.Envelope{Body: body}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&env); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// newFault makes a fault object from its vim type name, e.g. "FileFault".
func newFault(name, file string) (types.BaseMethodFault, error) {
	t, ok := types.TypeFunc()(name)
	if !ok || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("unknown vim type %q", name)
	}
	f, ok := reflect.New(t).Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a MethodFault type", name)
	}
	if ff, ok := f.(types.BaseFileFault); ok {
		ff.GetFileFault().File = file
	}
	return f, nil
}
