package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// front sits in front of vcsim's HTTP mux. It counts, delays and injects faults, answers
// /_ceso/ control requests, and adds the real-ESXi behaviours vcsim lacks. Everything
// it does not need to change it hands to vcsim untouched.
type front struct {
	o      *options
	inner  http.Handler // vcsim's mux: /sdk, /folder/, /nfc/, /guestFile, /about
	sdk    *simulator.Service
	inv    *inventory
	stats  *counters
	faults *injector
	pages  *pager
}

func newFront(o *options, inner http.Handler, sdk *simulator.Service, inv *inventory) *front {
	return &front{
		o:      o,
		inner:  inner,
		sdk:    sdk,
		inv:    inv,
		stats:  newCounters(),
		faults: &injector{},
		pages:  newPager(o.pageSize),
	}
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/_ceso/"):
		f.serveControl(w, r)
	case r.Method == http.MethodPost && (p == "/sdk" || p == "/sdk/vimService"):
		f.serveSOAP(w, r)
	default:
		f.serveFiles(w, r)
	}
}

// ---- /_ceso/: test control (no auth: the listener is loopback-only) ----

func (f *front) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /_ceso/stats":
		f.stats.serveJSON(w)
	case "POST /_ceso/reset":
		f.stats.reset()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "POST /_ceso/fail":
		body, _ := ioutil.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := f.faults.post(body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{"rules": f.faults.list()})
	case "GET /_ceso/fail":
		writeJSON(w, http.StatusOK, map[string]interface{}{"rules": f.faults.list()})
	case "POST /_ceso/guest":
		var u guestUpdate
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		err := dec.Decode(&u)
		if err == nil {
			err = f.inv.setGuest(r.Context(), u)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "POST /_ceso/expire-sessions":
		n, err := f.inv.expireSessions(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"expired": n})
	case "GET /_ceso/inventory":
		inv, err := f.inv.inventoryJSON(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, inv)
	case "POST /_ceso/reboot-host":
		writeJSON(w, http.StatusOK, map[string]int{"activated": rebootHosts()})
	case "GET /_ceso/datastore":
		dirs, err := f.inv.datastoreDirs(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, dirs)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error": "unknown control request " + strconv.Quote(route),
			"known": "GET /_ceso/stats, POST /_ceso/reset, GET|POST /_ceso/fail, POST /_ceso/guest, POST /_ceso/expire-sessions, GET /_ceso/inventory, GET /_ceso/datastore, POST /_ceso/reboot-host",
		})
	}
}

// ---- sessions ----

// currentTimeCall is the cheapest call vcsim refuses without a session.
const currentTimeCall = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">` +
	`<soapenv:Body><CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>` +
	`</CurrentTime></soapenv:Body></soapenv:Envelope>`

// hasSession asks vcsim itself whether the request's vmware_soap_session cookie names a
// live session, so that Logout, TerminateSession and idle expiry are all honoured without
// us tracking sessions. The probe keeps the caller's address and agent because vcsim
// records them in the session (SessionManager.sessionList).
func (f *front) hasSession(r *http.Request) bool {
	key := sessionKey(r)
	if key == "" {
		return false
	}
	probe := httptest.NewRequest(http.MethodPost, "/sdk", strings.NewReader(currentTimeCall))
	probe.RemoteAddr = r.RemoteAddr
	probe.Header.Set("User-Agent", r.UserAgent())
	probe.AddCookie(&http.Cookie{Name: soap.SessionCookieName, Value: key})
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, probe)
	return rec.Code == http.StatusOK
}

// sessionKey is the request's session cookie value ("" without one).
func sessionKey(r *http.Request) string {
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		return c.Value
	}
	return ""
}

// ---- SOAP ----

func (f *front) serveSOAP(w http.ResponseWriter, r *http.Request) {
	body, err := ioutil.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	call := parseSOAPCall(body)
	name := call.Method
	if name == "" {
		name = "(unparsable)"
	}
	local := f.isLocalClient(r)
	if local {
		f.stats.countLocal("soap", name)
	} else {
		f.stats.countSOAP(name)
	}

	// Like a real host's deserializer, refuse requests that do not follow the WSDL
	// before anything else looks at them (strict.go).
	if !f.o.lenient {
		if se := checkRequest(body); se != nil {
			log.Printf("rejected %s: %v", name, se)
			writeFault(w, se.Error(), &types.InvalidRequest{})
			return
		}
	}

	if f.o.delayMS > 0 && !local { // the host's own clients are not across a network
		time.Sleep(time.Duration(f.o.delayMS) * time.Millisecond)
	}

	if inj := f.faults.takeSOAP(call.Method); inj != nil {
		if w = f.serveInjectedSOAP(w, r, call, body, inj); w == nil { // hostile.go
			return
		}
	}

	// Session lookups cost a round trip through vcsim; do at most one per request.
	sessionKnown, session := false, false
	hasSession := func() bool {
		if !sessionKnown {
			session, sessionKnown = f.hasSession(r), true
		}
		return session
	}

	if call.Method == "RetrievePropertiesEx" {
		// Its session is checked where vcsim maps the cookie (retrieveStreamed), not
		// by a probe call through vcsim.
		f.retrieveStreamed(w, r, call, body)
		return
	}

	// Without a session, vcsim gives its own NotAuthenticated for everything except a
	// few calls, so the checks below only need to handle authenticated callers.
	switch {
	case sessionRequiredByUs[call.Method] && !hasSession():
		writeFault(w, "The session is not authenticated.", &types.NotAuthenticated{
			NoPermission: types.NoPermission{Object: call.This, PrivilegeId: "System.View"},
		})
		return
	case f.inv.esx && vCenterOnly[call.Method] && hasSession():
		writeFault(w, notSupportedMsg, &types.NotSupported{})
		return
	case f.o.free && !freeLicenseAllowed[call.Method] && !local && hasSession():
		writeFault(w, restrictedVersionMsg, &types.RestrictedVersion{})
		return
	}

	ctx := r.Context()
	if lockedDiskMethods[call.Method] && hasSession() && f.diskLocked(ctx, w, call, body) {
		return
	}
	if call.Method == "CreateSnapshot_Task" && hasSession() && f.hasPassthrough(call.This) {
		// ESXi: "Virtual machine is configured to use a device that prevents the
		// snapshot operation" (vcsim snapshots anything).
		writeFault(w, "Virtual machine is configured to use a device that prevents the snapshot operation: Device '' is a PCI passthrough device.",
			&types.InvalidState{})
		return
	}
	if call.Method == "SuspendVM_Task" && hasSession() && f.hasPassthrough(call.This) {
		// ESXi cannot suspend a VM with passthrough devices either.
		f.failedTask(w, call, &types.InvalidState{},
			"Virtual machine is configured to use a device that prevents the suspend operation: Device '' is a PCI passthrough device.")
		return
	}
	if call.Method == "PowerOnVM_Task" && hasSession() && f.pciPowerOn(w, call) { // pci.go
		return
	}
	if call.Method == "ReconfigVM_Task" && hasSession() && f.pciReconfig(w, call, body) {
		return
	}
	if portGroupMethods[call.Method] && hasSession() && f.netPortGroup(w, call, body) { // netsys.go
		return
	}
	if (dvPortgroupMethods[call.Method] || call.Method == "Destroy_Task") && hasSession() &&
		f.dvPortgroupCall(w, r, call, body) { // pools.go
		return
	}
	if call.Method == "CreateResourcePool" && hasSession() { // pools.go
		f.poolCall(w, r, call, body)
		return
	}
	if call.Method == "CreateVM_Task" && hasSession() && f.createVMPool(w, body) { // pools.go
		return
	}
	if call.Method == "CloneVM_Task" && hasSession() && f.cloneHostCheck(w, body) { // clonehost.go
		return
	}
	if call.Method == "QueryConfigTarget" && hasSession() {
		rec := f.record(r, body, call.Method)
		if rec.Code != http.StatusOK || !f.pciConfigTarget(w, rec.Body.Bytes(), call, body) {
			copyRecorded(w, rec)
		}
		return
	}
	if call.Method == "QueryChangedDiskAreas" && hasSession() { // cbt.go
		f.queryChangedDiskAreas(w, body)
		return
	}
	if guestOpMethods[call.Method] && hasSession() && f.guestOps(w, call) {
		return
	}
	if f.o.pageSize > 0 && pagedMethods[call.Method] && hasSession() {
		switch call.Method {
		case "ContinueRetrievePropertiesEx":
			f.continueRetrieve(w, r, body)
		case "CancelRetrievePropertiesEx":
			token, _ := findElementText(body, "token")
			f.pages.cancel(token, sessionKey(r))
			writeResponse(w, &types.CancelRetrievePropertiesExResponse{})
		}
		return
	}

	// Everything vcsim answers is recorded first (vcsim buffers whole responses anyway),
	// so that hooks can look at it and a vcsim panic can become a SOAP fault.
	if call.Method == "RegisterVM_Task" && hasSession() {
		if err := f.inv.prepareRegister(ctx, body); err != nil {
			log.Printf("RegisterVM_Task: %v", err)
		}
	}
	var pre preState
	if needsAfterHook[call.Method] {
		pre = f.beforeHook(ctx, call)
	}
	rec := f.record(r, body, call.Method)
	if snapshotRemovals[call.Method] && pre.vm.Value != "" {
		// Whatever vcsim answered, its snapshot keys were defused (snapshots.go).
		if err := f.inv.finishSnapshotRemoval(ctx, pre.vm, pre.snapshots); err != nil {
			log.Printf("%s: removing snapshot files: %v", call.Method, err)
		}
	}
	if rec.Code == http.StatusOK && needsAfterHook[call.Method] {
		if err := f.afterHook(ctx, call, pre, body, rec.Body.Bytes()); err != nil {
			log.Printf("%s: fixing up after vcsim: %v", call.Method, err)
		}
	}
	copyRecorded(w, rec)
}

// record runs vcsim on the request and keeps its answer. vcsim 0.24.2 panics on some
// bad input (e.g. CloneVM_Task into a folder that does not exist), which would drop the
// connection; a real host answers with a fault, so we turn the panic into a SystemError.
func (f *front) record(r *http.Request, body []byte, method string) (rec *httptest.ResponseRecorder) {
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	rec = httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			log.Printf("vcsim panicked in %s: %v\n%s", method, p, debug.Stack())
			rec = httptest.NewRecorder()
			writeFault(rec, fmt.Sprintf("simulator error in %s: %v", method, p),
				&types.SystemError{Reason: fmt.Sprint(p)})
		}
	}()
	f.inner.ServeHTTP(rec, r)
	return rec
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// inject answers with the fault a test asked for, as a SOAP fault or as a failed task.
func (f *front) inject(w http.ResponseWriter, call soapCall, inj *injection) {
	fault, err := newFault(inj.Fault, inj.File)
	if err != nil { // validated when posted; cannot happen
		writeFault(w, err.Error(), &types.SystemError{})
		return
	}
	msg := inj.Message
	if msg == "" {
		msg = "Injected fault " + inj.Fault
	}
	if inj.Task {
		f.failedTask(w, call, fault, msg)
		return
	}
	writeFault(w, msg, fault)
}

// failedTask creates a task (through vcsim, so clients can watch it like any other)
// that has already failed with fault, and answers the *_Task call with it.
func (f *front) failedTask(w http.ResponseWriter, call soapCall, fault types.BaseMethodFault, msg string) {
	id := strings.TrimSuffix(call.Method, "_Task")
	id = string(unicode.ToLower(rune(id[0]))) + id[1:]
	task := simulator.CreateTask(call.This, id, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	ref := task.Run()
	// vcsim's Task.Run sets the message to the Go type name; give it a human one.
	simulator.Map.WithLock(task, func() {
		simulator.Map.Update(task, []types.PropertyChange{{
			Name: "info.error",
			Val:  types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg},
		}})
	})
	writeResponse(w, &taskResponse{name: call.Method + "Response", Returnval: ref})
}

// taskResponse is the body of any *_TaskResponse: just the task.
type taskResponse struct {
	name      string
	Returnval types.ManagedObjectReference `xml:"returnval"`
}

func (t *taskResponse) responseName() string { return t.name }

var pagedMethods = map[string]bool{
	"RetrievePropertiesEx":         true,
	"ContinueRetrievePropertiesEx": true,
	"CancelRetrievePropertiesEx":   true,
}

var lockedDiskMethods = map[string]bool{
	"CopyVirtualDisk_Task":   true,
	"MoveVirtualDisk_Task":   true,
	"DeleteVirtualDisk_Task": true,
}

// diskLocked refuses to copy, move or delete a disk a running VM holds, as a real host
// does, with a task that fails with FileLocked. It reports whether it answered.
func (f *front) diskLocked(ctx context.Context, w http.ResponseWriter, call soapCall, body []byte) bool {
	var name string
	readOnly := false
	switch call.Method {
	case "CopyVirtualDisk_Task":
		name, _ = findElementText(body, "sourceName")
		readOnly = true
	case "MoveVirtualDisk_Task":
		name, _ = findElementText(body, "sourceName")
	case "DeleteVirtualDisk_Task":
		name, _ = findElementText(body, "name")
	default:
		return false
	}
	holder, err := f.inv.diskLockHolder(ctx, name, readOnly)
	if err != nil || holder == "" {
		return false
	}
	f.failedTask(w, call, &types.FileLocked{FileFault: types.FileFault{File: name}},
		fmt.Sprintf("Unable to access file %s since it is locked", name))
	return true
}

// needsAfterHook lists calls after which files on the datastore or layoutEx must be
// fixed up to look like a real host's (see disks.go and layout.go).
var needsAfterHook = map[string]bool{
	"CreateVM_Task":                true,
	"RegisterVM_Task":              true,
	"ReconfigVM_Task":              true,
	"CloneVM_Task":                 true,
	"CreateVirtualDisk_Task":       true,
	"CopyVirtualDisk_Task":         true,
	"MoveVirtualDisk_Task":         true,
	"RefreshStorageInfo":           true,
	"CreateSnapshot_Task":          true,
	"RemoveSnapshot_Task":          true,
	"RemoveAllSnapshots_Task":      true,
	"RevertToSnapshot_Task":        true,
	"RevertToCurrentSnapshot_Task": true,
}

// preState is what afterHook needs to know from before the call.
type preState struct {
	vm    types.ManagedObjectReference // the VM acted on (a removed snapshot forgets it)
	disks []diskFile                   // vpx CloneVM_Task: the source's disks (clone.go)
	// snapshot removals: the VM's snapshots before (snapshots.go)
	snapshots map[string]types.ManagedObjectReference
}

func (f *front) beforeHook(ctx context.Context, call soapCall) preState {
	var pre preState
	pre.vm, _ = f.inv.vmOf(ctx, call.This)
	if call.Method == "CloneVM_Task" && !f.inv.esx {
		pre.disks, _ = f.inv.diskFiles(ctx, call.This)
	}
	if snapshotRemovals[call.Method] && pre.vm.Value != "" {
		pre.snapshots = defuseSnapshotFiles(pre.vm)
	}
	return pre
}

// afterHook runs once vcsim has answered 200.
func (f *front) afterHook(ctx context.Context, call soapCall, pre preState, req, res []byte) error {
	if call.Method == "RefreshStorageInfo" {
		fixLayoutEx(call.This)
		return nil
	}
	info, err := f.inv.taskOutcome(ctx, res)
	if err != nil {
		return err
	}
	if info.State != types.TaskInfoStateSuccess {
		return nil
	}
	switch call.Method {
	case "CreateVM_Task", "RegisterVM_Task", "CloneVM_Task":
		ref, ok := info.Result.(types.ManagedObjectReference)
		if !ok {
			return nil
		}
		if call.Method == "RegisterVM_Task" {
			if err := f.inv.applyRegisteredVMX(ctx, req, ref); err != nil { // register.go
				return err
			}
		}
		if err := f.inv.syncVM(ctx, ref); err != nil {
			return err
		}
		if call.Method == "CloneVM_Task" {
			if err := f.inv.repairClone(ctx, call.This, ref, pre.disks); err != nil {
				return err
			}
			placeClone(ctx, ref, req) // clonehost.go
			return f.inv.applyCloneConfig(ctx, ref, req)
		}
	case "ReconfigVM_Task":
		fixExtraConfig(call.This)
		cbtReconfigured(call.This) // cbt.go
		return f.inv.syncVM(ctx, call.This)
	case "CopyVirtualDisk_Task", "MoveVirtualDisk_Task":
		dest, _ := findElementText(req, "destName")
		return f.inv.fixCopiedDescriptor(ctx, dest)
	case "CreateVirtualDisk_Task":
		m, err := simulator.UnmarshalBody(types.TypeFunc(), req)
		if err != nil {
			return err
		}
		cvd := m.Body.(*types.CreateVirtualDisk_Task)
		if spec, ok := cvd.Spec.(*types.FileBackedVirtualDiskSpec); ok {
			thin := spec.DiskType == string(types.VirtualDiskTypeThin)
			return f.inv.syncNewDisk(ctx, cvd.Name, spec.CapacityKb*1024, thin)
		}
	case "CreateSnapshot_Task":
		fixLayoutEx(pre.vm)
		if ref, ok := info.Result.(types.ManagedObjectReference); ok {
			recordSnapshotFile(pre.vm, ref)
			if err := f.cbtSnapshot(ctx, pre.vm, ref); err != nil { // cbt.go
				log.Printf("CreateSnapshot_Task: change tracking: %v", err)
			}
		}
		repointSnapshots(pre.vm, currentSnapshots(pre.vm))
	default: // other snapshot calls
		if pre.vm.Value != "" {
			fixLayoutEx(pre.vm)
			if !snapshotRemovals[call.Method] { // finishSnapshotRemoval did it
				repointSnapshots(pre.vm, currentSnapshots(pre.vm))
			}
		}
	}
	return nil
}

// retrievePaged passes RetrievePropertiesEx to vcsim and pages its answer (paging.go).
// retrieveStreamed answers RetrievePropertiesEx through vcsim's method, with the
// answer encoded onto the connection as it is produced (ServeSDKStreamed,
// tests/sim/vcsim-overlay) instead of whole in memory first, and cut into pages of
// min(maxObjects, -page-size) objects (paging.go) before it is encoded. Without a
// live session it is NotAuthenticated, as on a host (vcsim serves it to anybody).
func (f *front) retrieveStreamed(w http.ResponseWriter, r *http.Request, call soapCall, body []byte) {
	maxObjects := 0
	if s, ok := findElementText(body, "maxObjects"); ok {
		maxObjects, _ = strconv.Atoi(s)
	}
	limit := f.pages.limit(maxObjects)
	sw := &startWriter{ResponseWriter: w}
	defer func() {
		// vcsim 0.24.2 panics on some bad input; a host answers with a fault, and
		// after the status line has gone a host's answer breaks off.
		if p := recover(); p != nil {
			log.Printf("vcsim panicked in RetrievePropertiesEx: %v\n%s", p, debug.Stack())
			if sw.started {
				panic(http.ErrAbortHandler)
			}
			writeFault(w, fmt.Sprintf("simulator error in RetrievePropertiesEx: %v", p),
				&types.SystemError{Reason: fmt.Sprint(p)})
		}
	}()
	f.sdk.ServeSDKStreamed(sw, r, body, func(_ string, session bool, res soap.HasFault) soap.HasFault {
		if !session { // vcsim serves it to anybody
			return &methods.RetrievePropertiesExBody{Fault_: simulator.Fault(
				"The session is not authenticated.", &types.NotAuthenticated{
					NoPermission: types.NoPermission{Object: call.This, PrivilegeId: "System.View"},
				})}
		}
		if b, ok := res.(*methods.RetrievePropertiesExBody); ok && b.Res != nil && f.o.pageSize > 0 {
			f.pages.firstPage(b.Res.Returnval, limit, sessionKey(r))
		}
		return res
	})
}

// startWriter notes whether the status line has been written.
type startWriter struct {
	http.ResponseWriter
	started bool
}

func (s *startWriter) WriteHeader(code int) {
	s.started = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *startWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(p)
}

func (f *front) continueRetrieve(w http.ResponseWriter, r *http.Request, body []byte) {
	token, _ := findElementText(body, "token")
	page, err := f.pages.nextPage(token, sessionKey(r))
	if err != nil {
		writeFault(w, err.Error(), &types.InvalidArgument{InvalidProperty: "token"})
		return
	}
	writeResponse(w, &types.ContinueRetrievePropertiesExResponse{Returnval: *page})
}

// ---- datastore files and other HTTP ----

// serveFiles guards /folder with the authentication a real host requires (vcsim 0.24.2
// serves it to anybody), counts requests and bytes, and applies HTTP fault injections.
func (f *front) serveFiles(w http.ResponseWriter, r *http.Request) {
	segment := "/" + strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	key := r.Method + " " + segment
	local := f.isLocalClient(r)
	if local {
		f.stats.countLocal("http", key)
	} else {
		f.stats.countHTTP(key)
	}
	cw := &countingWriter{ResponseWriter: w, limit: -1, flipAt: -1}
	var in int64
	var cr *countingReader
	if r.Body != nil {
		cr = &countingReader{ReadCloser: r.Body, n: &in, limit: -1, flipAt: -1}
		r.Body = cr
	}
	defer func() {
		if !local {
			f.stats.addHTTPBytes(cw.n, in)
		}
	}()

	if segment == "/folder" && !f.authorized(r) {
		cw.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
		http.Error(cw, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	if segment == "/folder" && f.restrictedFileWrite(cw, r) {
		return
	}
	var out http.ResponseWriter = cw
	if inj := f.faults.takeHTTP(key, r.URL.Path); inj != nil {
		if inj.Status > 0 && inj.AfterBytes > 0 && r.Method == http.MethodPut {
			f.serveFullUpload(cw, r, inj) // fullput.go
			return
		}
		if inj.Status > 0 {
			writeInjectedStatus(cw, inj) // hostile.go
			return
		}
		out = httpWriter(cw, inj)
		if inj.FlipAt != nil {
			// A silent corruption: the body passes with one byte inverted.
			if r.Method == http.MethodPut && cr != nil {
				cr.flipAt = *inj.FlipAt
			} else {
				// flip_at is a file offset: a ranged GET's body starts at its range.
				cw.flipAt = *inj.FlipAt - rangeStart(r)
			}
		} else if inj.TrickleBPS > 0 {
			// trickled by out
		} else if r.Method == http.MethodPut && cr != nil {
			// Uploads: cut (or stall) the request body after after_bytes.
			cr.limit, cr.stall = inj.AfterBytes, time.Duration(inj.StallMS)*time.Millisecond
		} else {
			cw.limit = inj.AfterBytes
		}
	}
	f.inner.ServeHTTP(out, r)
}

func (f *front) authorized(r *http.Request) bool {
	if user, pass, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(user), []byte(f.o.user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(f.o.password)) == 1
	}
	return f.hasSession(r)
}

// countingWriter counts body bytes and, with limit >= 0, cuts the connection after
// limit bytes: the client sees a short body, as when a transfer dies mid-way.
type countingWriter struct {
	http.ResponseWriter
	n      int64
	limit  int64
	flipAt int64 // >= 0: this byte of the body goes out inverted
}

// rangeStart is the first byte a GET's "Range: bytes=A-[B]" asks for (0 without one).
func rangeStart(r *http.Request) int64 {
	v := strings.TrimPrefix(r.Header.Get("Range"), "bytes=")
	if i := strings.IndexByte(v, '-'); i > 0 {
		if a, err := strconv.ParseInt(v[:i], 10, 64); err == nil && a >= 0 {
			return a
		}
	}
	return 0
}

// flip inverts the byte at body offset `at` if it lies in p, which starts at
// offset n. It works on a copy: p may be the caller's buffer (or a file's pages).
func flip(p []byte, n, at int64) []byte {
	if at < n || at >= n+int64(len(p)) {
		return p
	}
	q := append([]byte(nil), p...)
	q[at-n] ^= 0xff
	return q
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.flipAt >= 0 {
		p = flip(p, c.n, c.flipAt)
	}
	if c.limit >= 0 && c.n+int64(len(p)) > c.limit {
		k, _ := c.ResponseWriter.Write(p[:c.limit-c.n])
		c.n += int64(k)
		if fl, ok := c.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		// net/http closes the connection without logging for this panic value.
		panic(http.ErrAbortHandler)
	}
	k, err := c.ResponseWriter.Write(p)
	c.n += int64(k)
	return k, err
}

// countingReader counts request body bytes and, with limit >= 0, stops after limit
// bytes: it stalls for `stall` once (a host that stops answering), or, without a stall,
// drops the connection (an upload cut mid-way).
type countingReader struct {
	io.ReadCloser
	n      *int64
	limit  int64
	stall  time.Duration
	flipAt int64 // >= 0: this byte of the body is taken inverted
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit >= 0 && *c.n >= c.limit {
		if c.stall <= 0 {
			panic(http.ErrAbortHandler)
		}
		time.Sleep(c.stall)
		c.limit = -1
	}
	if c.limit >= 0 && *c.n+int64(len(p)) > c.limit {
		p = p[:c.limit-*c.n]
	}
	k, err := c.ReadCloser.Read(p)
	if at := c.flipAt - *c.n; at >= 0 && at < int64(k) {
		p[at] ^= 0xff
	}
	*c.n += int64(k)
	return k, err
}

// hasPassthrough tells whether a VM has a VirtualPCIPassthrough device.
func (f *front) hasPassthrough(ref types.ManagedObjectReference) bool {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	found := false
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		for _, d := range vm.Config.Hardware.Device {
			if _, ok := d.(*types.VirtualPCIPassthrough); ok {
				found = true
			}
		}
	})
	return found
}
