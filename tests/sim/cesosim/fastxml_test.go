package main

// The simulator's fast encoder of RetrievePropertiesEx answers
// (vcsim-overlay/ceso_fastxml.go) must write what govmomi's encoder writes, byte for
// byte: compared here over every property of every object of both inventory models,
// over values written to be awkward, and over whole answers on the wire.

import (
	"bytes"
	"context"
	"fmt"
	"io/ioutil"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// awkward is text that needs every kind of escape the encoder has.
const awkward = "a<b>&\"'\t\n\r c\x01d\xffe\u00e9\u2028\U0001F600 ]]> \ufffd"

// checkEncoders compares the two encodings of each object; fallbacks counts the
// objects the fast encoder gave to govmomi's.
func checkEncoders(t *testing.T, what string, objs []types.ObjectContent) (compared, fallbacks int) {
	t.Helper()
	for i := range objs {
		fast, ok, std, err := simulator.FastEncoderCheck(&objs[i])
		if err != nil {
			t.Errorf("%s %s: govmomi's encoder: %v", what, objs[i].Obj, err)
			continue
		}
		if !ok {
			fallbacks++
			continue
		}
		compared++
		if !bytes.Equal(fast, std) {
			n := 0
			for n < len(fast) && n < len(std) && fast[n] == std[n] {
				n++
			}
			from := n - 80
			if from < 0 {
				from = 0
			}
			t.Errorf("%s %s: encodings differ at byte %d:\nfast: %q\ngovmomi: %q", what, objs[i].Obj, n,
				fast[from:minInt(len(fast), n+80)], std[from:minInt(len(std), n+80)])
		}
	}
	return compared, fallbacks
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func TestFastEncoderMatchesGovmomi(t *testing.T) {
	for _, model := range []string{"esx", "vpx"} {
		t.Run(model, func(t *testing.T) {
			ctx := context.Background()
			m := newModel(&options{model: model, vms: 3})
			dir := t.TempDir()
			t.Setenv("TMPDIR", dir)
			if err := m.Create(); err != nil {
				t.Fatal(err)
			}
			defer m.Remove()
			c, err := vim25.NewClient(ctx, m.Service)
			if err != nil {
				t.Fatal(err)
			}
			installPCI(true)
			installNetwork()
			if err := installCapacity(); err != nil {
				t.Fatal(err)
			}
			inv := &inventory{client: c, esx: model == "esx"}
			if err := inv.materializeAllDisks(ctx, 0); err != nil {
				t.Fatal(err)
			}
			// Awkward values where a host keeps free text, and a snapshot.
			vms, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder,
				[]string{"VirtualMachine"}, true)
			if err != nil {
				t.Fatal(err)
			}
			refs, err := vms.Find(ctx, []string{"VirtualMachine"}, nil)
			if err != nil || len(refs) == 0 {
				t.Fatalf("no VMs: %v", err)
			}
			vm := object.NewVirtualMachine(c, refs[0])
			task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{
				Annotation:  awkward,
				ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "ceso.tags", Value: awkward}},
			})
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if task, err = vm.CreateSnapshot(ctx, awkward, awkward, false, false); err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}

			// Every property of every object: the types first, then all of each.
			all, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := all.Find(ctx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, c.ServiceContent.RootFolder)
			kinds := map[string]bool{}
			spec := types.PropertyFilterSpec{}
			for _, o := range objs {
				if !kinds[o.Type] {
					kinds[o.Type] = true
					spec.PropSet = append(spec.PropSet, types.PropertySpec{Type: o.Type, All: types.NewBool(true)})
				}
				spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: o})
			}
			res, err := methods.RetrievePropertiesEx(ctx, c, &types.RetrievePropertiesEx{
				This: c.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Returnval == nil {
				t.Fatal("no objects")
			}
			compared, fallbacks := checkEncoders(t, model, res.Returnval.Objects)
			t.Logf("%s: %d objects of %d types compared, %d encoded by govmomi's encoder",
				model, compared, len(kinds), fallbacks)
			if compared < len(objs)-fallbacks || compared < 10 {
				t.Errorf("only %d of %d objects compared", compared, len(objs))
			}
			if fallbacks > 0 {
				t.Errorf("%d objects needed govmomi's encoder: a type the fast one should handle", fallbacks)
			}
		})
	}
}

// marshaling has its own MarshalXML: the fast encoder leaves it to govmomi's.
type marshaling struct{ V string }

func (m marshaling) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement("custom:"+m.V, start)
}

func TestFastEncoderValues(t *testing.T) {
	when := time.Date(2026, 12, 3, 19, 5, 36, 123456789, time.FixedZone("x", 3600))
	f := false
	props := []types.DynamicProperty{
		{Name: "s", Val: awkward},
		{Name: "empty", Val: ""},
		{Name: "time", Val: when},
		{Name: "timeptr", Val: &when},
		{Name: "i32", Val: int32(-7)},
		{Name: "i64", Val: int64(1) << 62},
		{Name: "u8", Val: uint8(200)},
		{Name: "f64", Val: 0.1},
		{Name: "f32", Val: float32(1e-7)},
		{Name: "b", Val: true},
		{Name: "enum", Val: types.VirtualMachinePowerStatePoweredOn},
		{Name: "strings", Val: types.ArrayOfString{String: []string{"a", "", awkward}}},
		{Name: "moref", Val: types.ManagedObjectReference{Type: "Virtual<Machine>", Value: awkward}},
		{Name: "morefs", Val: types.ArrayOfManagedObjectReference{ManagedObjectReference: []types.ManagedObjectReference{
			{Type: "VirtualMachine", Value: "vm-1"}, {Type: "VirtualMachine", Value: "vm-2"}}}},
		{Name: "bytes", Val: []byte("raw<bytes>\x00")},
		{Name: "nilptr", Val: (*types.VirtualMachineConfigInfo)(nil)},
		{Name: "nothing", Val: nil},
		{Name: "nested", Val: types.VirtualMachineConfigInfo{
			Name: awkward, Template: false, CpuHotAddEnabled: &f, ChangeVersion: awkward,
			Hardware: types.VirtualHardware{NumCPU: 2, Device: []types.BaseVirtualDevice{
				&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2000,
					Backing: &types.VirtualDiskFlatVer2BackingInfo{
						VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: awkward},
						ThinProvisioned:              &f}},
					CapacityInBytes: 1 << 40},
				&types.VirtualVmxnet3{},
			}},
			ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "k", Value: int32(3)},
				&types.OptionValue{Key: awkward, Value: awkward}},
			CreateDate: &when,
		}},
	}
	objs := []types.ObjectContent{
		{Obj: types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}, PropSet: props,
			MissingSet: []types.MissingProperty{{Path: awkward, Fault: types.LocalizedMethodFault{
				Fault: &types.NotAuthenticated{}, LocalizedMessage: awkward}}}},
		{Obj: types.ManagedObjectReference{Type: "Folder", Value: "group-1"}},
	}
	compared, fallbacks := checkEncoders(t, "values", objs)
	if compared != len(objs) || fallbacks != 0 {
		t.Errorf("compared %d, fallbacks %d", compared, fallbacks)
	}

	// A value with its own MarshalXML: govmomi's encoder writes the object.
	odd := types.ObjectContent{Obj: types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-2"},
		PropSet: []types.DynamicProperty{{Name: "odd", Val: []interface{}{marshaling{V: "x"}}}}}
	fast, ok, std, err := simulator.FastEncoderCheck(&odd)
	if ok || len(fast) != 0 {
		t.Errorf("a MarshalXML value was encoded by the fast encoder: %q", fast)
	}
	if err != nil || !strings.Contains(string(std), "custom:x") {
		t.Errorf("govmomi's encoding of a MarshalXML value: %q, %v", std, err)
	}
}

// On the wire: a whole answer as a client reads it, fast and with govmomi's encoder.
func TestFastEncoderWholeAnswer(t *testing.T) {
	s := startTestSim(t, "eval")
	c := s.remote("")
	ctx := context.Background()
	vms, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder,
		[]string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	cookie := ""
	for _, ck := range c.Jar.Cookies(s.url) {
		cookie = ck.Name + "=" + ck.Value
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>config.hardware.device</pathSet><pathSet>config.extraConfig</pathSet><pathSet>runtime.powerState</pathSet><pathSet>config.template</pathSet></propSet><objectSet><obj type="ContainerView">%s</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>v</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options></options></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>`,
		vms.Reference().Value)
	fetch := func() []byte {
		req, err := http.NewRequest("POST", s.url.String(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/xml")
		req.Header.Set("SOAPAction", "urn:vim25/6.5")
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := ioutil.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v: %s", resp.StatusCode, err, b)
		}
		return b
	}
	fast := fetch()
	simulator.FastEncoding = false
	defer func() { simulator.FastEncoding = true }()
	std := fetch()
	if !bytes.Equal(fast, std) {
		t.Errorf("answers differ:\nfast:    %.400q\ngovmomi: %.400q", fast, std)
	}
	if n := bytes.Count(fast, []byte("<objects>")); n != 2 {
		t.Errorf("%d objects in the answer, want 2: %.300q", n, fast)
	}
}
