package main

import (
	"strings"
	"testing"
)

// envelope wraps a method element the way clients send it.
func envelope(method string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"` +
		` xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
		`<soapenv:Body>` + method + `</soapenv:Body></soapenv:Envelope>`)
}

// reconfig is a ReconfigVM_Task whose spec holds `change` as its only deviceChange.
func reconfig(change string) []byte {
	return envelope(`<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-9</_this>` +
		`<spec><deviceChange>` + change + `</deviceChange></spec></ReconfigVM_Task>`)
}

const goodDisk = `<operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key>` +
	`<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[LocalDS_0] a/a.vmdk</fileName>` +
	`<datastore type="Datastore">ds-1</datastore><diskMode>persistent</diskMode></backing>` +
	`<controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>2048</capacityInKB></device>`

func TestStrictAcceptsWellFormedRequests(t *testing.T) {
	good := map[string][]byte{
		"disk edit": reconfig(goodDisk),
		"login": envelope(`<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>` +
			`<userName>root</userName><password>x</password></Login>`),
		"extraConfig anyType": envelope(`<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-9</_this>` +
			`<spec><extraConfig><key>k</key><value xsi:type="xsd:string">v</value></extraConfig></spec></ReconfigVM_Task>`),
		"traversal spec": envelope(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">pc</_this>` +
			`<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet>` +
			`<objectSet><obj type="ContainerView">v</obj><skip>true</skip><selectSet xsi:type="TraversalSpec">` +
			`<name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>` +
			`</specSet><options><maxObjects>100</maxObjects></options></RetrievePropertiesEx>`),
		"unknown method (vcsim answers)": envelope(`<NoSuchMethod xmlns="urn:vim25"><x/></NoSuchMethod>`),
	}
	for name, body := range good {
		if err := checkRequest(body); err != nil {
			t.Errorf("%s: rejected: %v", name, err)
		}
	}
}

func TestStrictRejects(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want []string // substrings of the fault message
	}{
		{"out-of-order child",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key>` +
				`<controllerKey>1000</controllerKey><backing xsi:type="VirtualDiskFlatVer2BackingInfo">` +
				`<fileName>[LocalDS_0] a/a.vmdk</fileName><diskMode>persistent</diskMode></backing>` +
				`<capacityInKB>1</capacityInKB></device>`),
			[]string{`Unexpected element tag "backing"`, `out of WSDL sequence order`, `"backing" must come before "controllerKey"`,
				"at ReconfigVM_Task/spec/deviceChange[0]/device(VirtualDisk)/backing (line"}},
		{"out-of-order parameter",
			envelope(`<ReconfigVM_Task xmlns="urn:vim25"><spec/><_this type="VirtualMachine">vm-9</_this></ReconfigVM_Task>`),
			[]string{`Unexpected element tag "_this"`, "out of WSDL sequence order"}},
		{"unknown element",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key><sizeGB>3</sizeGB></device>`),
			[]string{`Unexpected element tag "sizeGB" seen: VirtualDisk has no property "sizeGB"`,
				"at ReconfigVM_Task/spec/deviceChange[0]/device(VirtualDisk)/sizeGB (line"}},
		{"unknown parameter",
			envelope(`<PowerOnVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-9</_this><force>true</force></PowerOnVM_Task>`),
			[]string{`PowerOnVM_Task has no parameter "force"`}},
		{"moref without type (datastore in a disk backing)",
			reconfig(strings.Replace(goodDisk, `<datastore type="Datastore">`, `<datastore>`, 1)),
			[]string{`Missing attribute "type" of a ManagedObjectReference`,
				"at ReconfigVM_Task/spec/deviceChange[0]/device(VirtualDisk)/backing(VirtualDiskFlatVer2BackingInfo)/datastore"}},
		{"moref without type (_this)",
			envelope(`<PowerOnVM_Task xmlns="urn:vim25"><_this>vm-9</_this></PowerOnVM_Task>`),
			[]string{`Missing attribute "type"`, "at PowerOnVM_Task/_this"}},
		{"moref without type (network of a NIC backing)",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualVmxnet3"><key>4000</key>` +
				`<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName>` +
				`<network>network-7</network></backing></device>`),
			[]string{`Missing attribute "type"`, "backing(VirtualEthernetCardNetworkBackingInfo)/network"}},
		{"missing xsi:type on an abstract device",
			reconfig(`<operation>edit</operation><device><key>2000</key></device>`),
			[]string{"Missing xsi:type: the declared type VirtualDevice is abstract", "at ReconfigVM_Task/spec/deviceChange[0]/device"}},
		{"missing xsi:type on a backing",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key>` +
				`<backing><fileName>[LocalDS_0] a/a.vmdk</fileName></backing></device>`),
			[]string{"Missing xsi:type: the declared type VirtualDeviceBackingInfo is abstract"}},
		{"missing xsi:type on anyType",
			envelope(`<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-9</_this>` +
				`<spec><extraConfig><key>k</key><value>v</value></extraConfig></spec></ReconfigVM_Task>`),
			[]string{"Missing xsi:type: a value of declared type anyType"}},
		{"subtype child without xsi:type on a concrete base",
			envelope(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">pc</_this>` +
				`<specSet><propSet><type>VirtualMachine</type></propSet><objectSet><obj type="ContainerView">v</obj>` +
				`<selectSet><name>view</name><type>ContainerView</type><path>view</path></selectSet></objectSet>` +
				`</specSet><options/></RetrievePropertiesEx>`),
			[]string{`SelectionSpec has no property "type"`, "read as its declared type SelectionSpec"}},
		{"xsi:type not a subtype",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDiskFlatVer2BackingInfo"><key>2000</key></device>`),
			[]string{`Type "VirtualDiskFlatVer2BackingInfo" in xsi:type is not a VirtualDevice`}},
		{"required parameter missing",
			envelope(`<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-9</_this></ReconfigVM_Task>`),
			[]string{"Required parameter spec is missing"}},
		{"required property missing",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDisk"><backing xsi:type="VirtualDiskFlatVer2BackingInfo">` +
				`<fileName>x</fileName><diskMode>persistent</diskMode></backing></device>`),
			[]string{"Required property key is missing from data object of type VirtualDisk"}},
		{"bad number",
			reconfig(`<operation>edit</operation><device xsi:type="VirtualDisk"><key>two</key></device>`),
			[]string{`Invalid value "two" for type int32`}},
	}
	for _, tc := range cases {
		err := checkRequest(tc.body)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: fault %q lacks %q", tc.name, err.Error(), w)
			}
		}
	}
}
