#!/bin/bash
# smoke.sh — self-check of the simulator test bed, speaking SOAP and HTTP with curl only.
#
# Builds cesosim, then runs three simulators one after the other:
#   esx  (-vms 3 -fill-mib 2 -tls, plus a VM with a hostile name): the main checks
#   esx -free: the free-license RestrictedVersion behaviour
#   esx --license free --ssh: API writes refused, vim-cmd over the real sshd works
#   vpx: vCenter-only methods work there
# Prints one "ok"/"not ok" line per check and "N passed, N failed"; exits 1 on failure.
# Checks are often 'eval'-ed single-quoted conditions, expanded when the check runs:
# shellcheck disable=SC2016,SC2034
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
simctl=$here/simctl
work=$(mktemp -d "${TMPDIR:-/tmp}/ceso-smoke.XXXXXX")
passed=0
failed=0

cleanup() {
	if [ -n "${CESO_SIM_STATE:-}" ]; then "$simctl" stop || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	if [ -s "$work/resp" ]; then head -c 600 "$work/resp" | sed 's/^/#   /'; echo; fi
}
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
has() { grep -qF -- "$1" "$work/resp"; }       # the last response contains a string
lacks() { ! grep -qF -- "$1" "$work/resp"; }
is() { [ "$1" = "$2" ]; }
matches() { [[ $1 =~ $2 ]]; }

# urlencode STRING: percent-encode everything but unreserved characters, byte by byte.
urlencode() {
	local b out=
	for b in $(printf '%s' "$1" | od -An -tx1 -v); do
		case $b in
		3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f | 7e) out+=$(printf '%b' "\\x$b") ;;
		*) out+="%${b^^}" ;;
		esac
	done
	printf '%s' "$out"
}

# ---- SOAP over curl ----

xml_escape() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	s=${s//\"/&quot;}
	printf '%s' "$s"
}

# soap BODY [CURL-ARGS...]: POST an envelope around BODY with the session cookie jar; the
# response goes to $work/resp and the HTTP status to $code.
code=
soap() {
	local env='<?xml version="1.0" encoding="UTF-8"?>'
	env+='<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
	env+=' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
	env+="$1</soapenv:Body></soapenv:Envelope>"
	shift
	code=$(curl -sS "${tls[@]}" -b "$work/jar" -c "$work/jar" "$@" \
		-H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: "urn:vim25/6.5"' \
		--data-binary "$env" -o "$work/resp" -w '%{http_code}' "$CESO_URL")
}

# first TAG: text of the first <TAG ...>text</TAG> in the last response.
first() { grep -o "<$1[^>]*>[^<]*</$1>" "$work/resp" | head -1 | sed 's/<[^>]*>//g'; }

login() {
	soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">$sm</_this><userName>$(xml_escape "$CESO_USER")</userName><password>$(xml_escape "$1")</password></Login>"
}

# vm_names VIEW [MAXOBJECTS]: RetrievePropertiesEx of name for every VM in a container view.
retrieve_vms() {
	local opts=
	[ -n "${2:-}" ] && opts="<maxObjects>$2</maxObjects>"
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet><pathSet>config.extraConfig</pathSet><pathSet>parent</pathSet></propSet><objectSet><obj type=\"ContainerView\">$1</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options>$opts</options></RetrievePropertiesEx>"
}

continue_retrieve() {
	soap "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><token>$1</token></ContinueRetrievePropertiesEx>"
}

task_info() {
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Task\">$1</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
}

# vm_id NAME-AS-ESCAPED-IN-XML: moref of a VM from the last VM listing saved in $work/vms.
vm_id() {
	grep -o "<obj type=\"VirtualMachine\">[^<]*</obj><propSet><name>name</name><val [^>]*>$1</val>" "$work/vms" |
		head -1 | sed 's/.*<obj type="VirtualMachine">\([^<]*\)<.*/\1/'
}

# start_sim FLAGS...: start a simulator and read its service content.
start_sim() {
	local out
	if ! out=$("$simctl" start "$@"); then
		not_ok "simctl start $*"
		return 1
	fi
	eval "$out"
	ok "simctl start $*"
	tls=()
	[ -n "${CESO_SIM_CERT:-}" ] && tls=(--cacert "$CESO_SIM_CERT")
	base=${CESO_URL%/sdk}
	rm -f "$work/jar"
	soap '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
	sm=$(first sessionManager)
	pc=$(first propertyCollector)
	vdm=$(first virtualDiskManager)
	root=$(first rootFolder)
	api=$(first apiType)
}

stop_sim() {
	check "simctl stop" "$simctl" stop
	unset CESO_SIM_STATE CESO_SIM_CERT CESO_SIM_THUMBPRINT
}

control() { curl -sS "${tls[@]}" -o "$work/resp" -w '%{http_code}' "$@"; }

# ---- 0. build ----
check "simctl build" "$simctl" build

# ---- 1. esx model ----
hostile='web 01 & <x> "q" é'
cat >"$work/spec.json" <<'EOF'
[{"name":"web 01 & <x> \"q\" é","power":"on","tags":["web","db"],"guest_id":"ubuntu64Guest",
  "extra_config":{"k":"v"},"cpus":2,"memory_mib":2048,"ip":"10.0.0.21"}]
EOF
hostile_xml='web 01 &amp; &lt;x&gt; &#34;q&#34; é' # as Go's XML encoder writes it

if start_sim -vms 3 -fill-mib 2 -vm-spec "$work/spec.json" -tls; then
	check "URL is https on loopback" matches "$CESO_URL" '^https://127\.0\.0\.1:[0-9]+/sdk$'
	check "thumbprint is SHA-256, uppercase, colon-separated" \
		matches "$CESO_SIM_THUMBPRINT" '^([0-9A-F]{2}:){31}[0-9A-F]{2}$'
	fp=$(openssl x509 -in "$CESO_SIM_CERT" -noout -fingerprint -sha256 | sed 's/.*=//')
	check "thumbprint matches the served certificate" is "$fp" "$CESO_SIM_THUMBPRINT"
	check "service content says HostAgent" is "$api" HostAgent

	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>Folder</type><pathSet>name</pathSet></propSet><objectSet><obj type=\"Folder\">$root</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	check "RetrievePropertiesEx without a session: NotAuthenticated" \
		eval '[ "$code" = 500 ] && has "xsi:type=\"NotAuthenticated\""'

	login wrong-password
	check "Login with a wrong password: InvalidLogin" \
		eval '[ "$code" = 500 ] && has "<InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\">"'
	login "$CESO_PASSWORD"
	check "Login" eval '[ "$code" = 200 ] && grep -q vmware_soap_session "$work/jar"'
	cookie=$(awk '$6 == "vmware_soap_session" { print $7 }' "$work/jar")

	soap "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this><container type=\"Folder\">$root</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"
	view=$(first returnval)
	check "CreateContainerView" eval '[ "$code" = 200 ] && [ -n "$view" ]'

	retrieve_vms "$view"
	cp "$work/resp" "$work/vms"
	check "RetrievePropertiesEx lists 4 VMs" is "$(grep -o '<name>name</name>' "$work/resp" | wc -l)" 4
	check "the hostile name comes back escaped" has "$hostile_xml"
	check "tags are in ExtraConfig ceso.tags" has '<key>ceso.tags</key><value XMLSchema-instance:type="xsd:string">web,db</value>'
	check "no token when everything fits" lacks '<token>'
	vm0=$(vm_id ha-host_VM0)
	vm1=$(vm_id ha-host_VM1)

	retrieve_vms "$view" 3
	token=$(first token)
	n=$(grep -o '<name>name</name>' "$work/resp" | wc -l)
	check "maxObjects=3 returns 3 objects and a token" eval '[ "$n" = 3 ] && [ -n "$token" ]'
	continue_retrieve "$token"
	n=$(grep -o '<name>name</name>' "$work/resp" | wc -l)
	check "ContinueRetrievePropertiesEx returns the last object, no token" \
		eval '[ "$code" = 200 ] && [ "$n" = 1 ] && lacks "<token>"'

	soap "<CloneVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this><folder type=\"Folder\">ha-folder-vm</folder><name>clone1</name><spec><location/><template>false</template><powerOn>false</powerOn></spec></CloneVM_Task>"
	cp "$work/resp" "$work/notsupported.xml"
	check "CloneVM_Task on ESXi: NotSupported" eval '[ "$code" = 500 ] &&
		has "<faultstring>The operation is not supported on the object.</faultstring>" &&
		has "<NotSupportedFault xmlns=\"urn:vim25\" xsi:type=\"NotSupported\">"'
	soap "<MarkAsTemplate xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this></MarkAsTemplate>"
	check "MarkAsTemplate on ESXi: NotSupported" eval '[ "$code" = 500 ] && has "xsi:type=\"NotSupported\""'

	# strict request schema (strict.go): the four kinds a real host's deserializer refuses,
	# each answered with InvalidRequest naming the element path; the fixed request passes.
	reconfig() { soap "<ReconfigVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this><spec>$1</spec></ReconfigVM_Task>"; }
	# says TEXT: the last response contains TEXT once XML character references are undone.
	says() { sed -e 's/&#34;/"/g; s/&quot;/"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g' "$work/resp" | grep -qF -- "$1"; }
	invalid() { [ "$code" = 500 ] && has '<InvalidRequestFault xmlns="urn:vim25" xsi:type="InvalidRequest">' && says "$1"; }
	disk() { # disk BACKING-ATTRS DEVICE-ATTRS DATASTORE-ATTRS
		reconfig "<deviceChange><operation>edit</operation><device$2><key>2000</key><backing$1><fileName>[LocalDS_0] ha-host_VM0/disk1.vmdk</fileName><datastore$3>x</datastore><diskMode>persistent</diskMode></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>1024</capacityInKB></device></deviceChange>"
	}
	reconfig "<memoryMB>64</memoryMB><numCPUs>1</numCPUs>"
	check "strict: children out of WSDL order: InvalidRequest" eval 'invalid "Unexpected element tag \"numCPUs\" seen in data object of type VirtualMachineConfigSpec: out of WSDL sequence order, \"numCPUs\" must come before \"memoryMB\" at ReconfigVM_Task/spec/numCPUs"'
	reconfig "<annotation>smoke</annotation><sizeGB>1</sizeGB>"
	check "strict: unknown element: InvalidRequest" eval 'invalid "VirtualMachineConfigSpec has no property \"sizeGB\" at ReconfigVM_Task/spec/sizeGB"'
	bt=' xsi:type="VirtualDiskFlatVer2BackingInfo"' dt=' xsi:type="VirtualDisk"'
	disk "$bt" "$dt" ''
	check "strict: moref without type: InvalidRequest" eval 'invalid "Missing attribute \"type\" of a ManagedObjectReference" &&
		says "at ReconfigVM_Task/spec/deviceChange[0]/device(VirtualDisk)/backing(VirtualDiskFlatVer2BackingInfo)/datastore"'
	disk "$bt" '' ' type="Datastore"'
	check "strict: device without xsi:type: InvalidRequest" eval 'invalid "Missing xsi:type: the declared type VirtualDevice is abstract" &&
		says "at ReconfigVM_Task/spec/deviceChange[0]/device (line"'
	reconfig "<numCPUs>1</numCPUs><memoryMB>64</memoryMB><annotation>late</annotation>"
	check "strict: a fault names the method" eval 'invalid "while parsing call information for method ReconfigVM_Task"'
	reconfig "<annotation>smoke</annotation><numCPUs>1</numCPUs>"
	check "strict: the same spec in WSDL order passes" is "$code" 200

	# datastore files
	ds_dir=$(curl -sS "${tls[@]}" "$base/_ceso/datastore" | sed 's/.*"LocalDS_0":"\([^"]*\)".*/\1/')
	check "/_ceso/datastore names the local directory" test -d "$ds_dir"
	flat_url="$base/folder/ha-host_VM0/disk1-flat.vmdk?dcPath=ha-datacenter&dsName=LocalDS_0"
	local_flat=$ds_dir/ha-host_VM0/disk1-flat.vmdk
	check "flat file holds -fill-mib 2 MiB" is "$(stat -c %s "$local_flat")" 2097152
	check "each disk has different data" eval '! cmp -s "$local_flat" "$ds_dir/ha-host_VM1/disk1-flat.vmdk"'
	check "/folder without credentials: 401" is "$(control "$flat_url")" 401
	check "/folder with a wrong password: 401" is "$(control -u "$CESO_USER:nope" "$flat_url")" 401
	check "/folder with a forged cookie: 401" \
		is "$(control -b "vmware_soap_session=00000000-0000-0000-0000-000000000000" "$flat_url")" 401
	check "/folder GET with the session cookie: 200" is "$(control -b "vmware_soap_session=$cookie" "$flat_url")" 200
	check "... and the bytes are the datastore file's" cmp -s "$work/resp" "$local_flat"
	check "/folder GET with basic auth: 200" is "$(control -u "$CESO_USER:$CESO_PASSWORD" "$flat_url")" 200
	check "/folder GET Range: 206" \
		is "$(control -b "vmware_soap_session=$cookie" -r 1000-1999 "$flat_url")" 206
	check "... with exactly the requested bytes" \
		cmp -s "$work/resp" <(tail -c +1001 "$local_flat" | head -c 1000)
	control -b "vmware_soap_session=$cookie" \
		"$base/folder/ha-host_VM0/disk1.vmdk?dcPath=ha-datacenter&dsName=LocalDS_0" >/dev/null
	check "descriptor names the flat extent and its size" has 'RW 4096 VMFS "disk1-flat.vmdk"'
	enc_dir=$(urlencode "$hostile")
	check "/folder serves files of the VM with the hostile name" \
		is "$(control -b "vmware_soap_session=$cookie" "$base/folder/$enc_dir/$enc_dir.vmx?dcPath=ha-datacenter&dsName=LocalDS_0")" 200
	check "... its .vmx carries the tags" has 'ceso.tags = "web,db"'

	# counters
	stats=$(curl -sS "${tls[@]}" "$base/_ceso/stats")
	check "stats count Login calls" grep -q '"Login":2' <<<"$stats"
	check "stats count RetrievePropertiesEx calls" grep -q '"RetrievePropertiesEx":3' <<<"$stats"
	check "stats count /folder GETs" grep -q '"GET /folder":8' <<<"$stats"
	check "stats count bytes served" eval '[ "$(sed "s/.*\"http_bytes\":\([0-9]*\).*/\1/" <<<"$stats")" -ge 4194304 ]'
	check "POST /_ceso/reset" is "$(control -X POST "$base/_ceso/reset")" 200
	check "counters are zero after reset" is "$(curl -sS "${tls[@]}" "$base/_ceso/stats")" \
		'{"soap":{},"soap_total":0,"http":{},"http_bytes":0,"http_bytes_in":0,"local_soap":{},"local_http":{}}'

	# fault injection: SOAP
	check "inject a FileFault" is "$(control -X POST --data-binary \
		'{"method":"RetrievePropertiesEx","fault":"FileFault","message":"injected","count":1}' "$base/_ceso/fail")" 200
	retrieve_vms "$view"
	check "the next call fails with it" eval '[ "$code" = 500 ] && has "<faultstring>injected</faultstring>" &&
		has "<FileFaultFault xmlns=\"urn:vim25\" xsi:type=\"FileFault\">"'
	retrieve_vms "$view"
	check "the call after that works again" is "$code" 200
	check "a bad injection is refused" is "$(control -X POST --data-binary '{"method":"X","fault":"NoSuchFault"}' "$base/_ceso/fail")" 400

	# disks of running VMs are locked; copies look like a real host's
	copy_disk() {
		soap "<CopyVirtualDisk_Task xmlns=\"urn:vim25\"><_this type=\"VirtualDiskManager\">$vdm</_this><sourceName>[LocalDS_0] ha-host_VM1/disk1.vmdk</sourceName><sourceDatacenter type=\"Datacenter\">ha-datacenter</sourceDatacenter><destName>[LocalDS_0] ha-host_VM1/copy.vmdk</destName><destDatacenter type=\"Datacenter\">ha-datacenter</destDatacenter></CopyVirtualDisk_Task>"
		task_info "$(first returnval)"
	}
	copy_disk
	check "CopyVirtualDisk_Task of a running VM's disk: task error FileLocked" eval 'has "<state>error</state>" &&
		has "XMLSchema-instance:type=\"FileLocked\"" && has "since it is locked"'
	soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm1</_this></PowerOffVM_Task>"
	check "PowerOffVM_Task" is "$code" 200
	copy_disk
	check "CopyVirtualDisk_Task of a stopped VM's disk succeeds" has "<state>success</state>"
	check "... the copy is byte-identical" cmp -s "$ds_dir/ha-host_VM1/copy-flat.vmdk" "$ds_dir/ha-host_VM1/disk1-flat.vmdk"
	check "... and its descriptor names its own flat file" grep -q 'RW 4096 VMFS "copy-flat.vmdk"' "$ds_dir/ha-host_VM1/copy.vmdk"

	# fault injection: a datastore download cut mid-way, then resumed
	check "inject a cut after 1 MiB" is "$(control -X POST --data-binary \
		'{"http":"GET /folder","after_bytes":1048576,"count":1}' "$base/_ceso/fail")" 200
	curl -sS "${tls[@]}" -b "vmware_soap_session=$cookie" -o "$work/partial" "$flat_url" 2>/dev/null
	rc=$?
	check "the download is cut at 1 MiB" eval '[ "$rc" != 0 ] && [ "$(stat -c %s "$work/partial")" = 1048576 ]'
	curl -sS "${tls[@]}" -b "vmware_soap_session=$cookie" -C - -o "$work/partial" "$flat_url"
	check "resuming with Range completes it byte for byte" cmp -s "$work/partial" "$local_flat"
	check "POST /_ceso/fail {} clears all rules" eval '[ "$(control -X POST --data-binary "{}" "$base/_ceso/fail")" = 200 ] && has "\"rules\":[]"'

	# playing VMware Tools
	check "POST /_ceso/guest" is "$(control -X POST --data-binary \
		'{"name":"ha-host_VM0","ip":"10.9.9.9","tools":"running","hostname":"vm0.lab"}' "$base/_ceso/guest")" 200
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>guest.ipAddress</pathSet><pathSet>guest.toolsRunningStatus</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$vm0</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	check "... guest.ipAddress and tools status change" eval 'has ">10.9.9.9<" && has ">guestToolsRunning<"'

	# WaitForUpdatesEx sees a power change
	soap "<CreateFilter xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><spec><propSet><type>VirtualMachine</type><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$vm1</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"
	check "CreateFilter" is "$code" 200
	soap "<WaitForUpdatesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><version></version><options><maxWaitSeconds>5</maxWaitSeconds></options></WaitForUpdatesEx>"
	version=$(first version)
	check "WaitForUpdatesEx (initial) reports the current state" eval '[ "$code" = 200 ] && has ">poweredOff<"'
	soap "<PowerOnVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm1</_this></PowerOnVM_Task>"
	soap "<WaitForUpdatesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><version>$(xml_escape "$version")</version><options><maxWaitSeconds>5</maxWaitSeconds></options></WaitForUpdatesEx>"
	check "WaitForUpdatesEx (next) reports the power-on" eval '[ "$code" = 200 ] && has ">poweredOn<"'

	# sessions ending under a client's feet
	check "POST /_ceso/expire-sessions" eval '[ "$(control -X POST "$base/_ceso/expire-sessions")" = 200 ] &&
		has "{\"expired\":1}"'
	retrieve_vms "$view"
	check "... the old cookie gets NotAuthenticated" eval '[ "$code" = 500 ] && has "xsi:type=\"NotAuthenticated\""'
	login "$CESO_PASSWORD"
	check "... and logging in again works" is "$code" 200

	soap "<Logout xmlns=\"urn:vim25\"><_this type=\"SessionManager\">$sm</_this></Logout>"
	check "Logout" is "$code" 200
	check "/folder with the logged-out cookie: 401" is "$(control -b "vmware_soap_session=$cookie" "$flat_url")" 401
	stop_sim
fi

# ---- 2. esx with a free license ----
if start_sim -vms 2 -free; then
	check "URL is http on loopback" matches "$CESO_URL" '^http://127\.0\.0\.1:[0-9]+/sdk$'
	login "$CESO_PASSWORD"
	check "free: Login works" is "$code" 200
	soap "<RetrieveProperties xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type=\"Folder\">$root</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>f2c</name><type>Folder</type><path>childEntity</path><selectSet><name>f2c</name></selectSet><selectSet><name>dc2vm</name></selectSet></selectSet><selectSet xsi:type=\"TraversalSpec\"><name>dc2vm</name><type>Datacenter</type><path>vmFolder</path><selectSet><name>f2c</name></selectSet></selectSet></objectSet></specSet></RetrieveProperties>"
	check "free: RetrieveProperties works" eval '[ "$code" = 200 ] && has ha-host_VM0'
	vm0=$(grep -o '<obj type="VirtualMachine">[^<]*</obj>' "$work/resp" | head -1 | sed 's/<[^>]*>//g')
	soap "<PowerOnVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this></PowerOnVM_Task>"
	cp "$work/resp" "$work/restricted.xml"
	check "free: PowerOnVM_Task fails with RestrictedVersion" eval '[ "$code" = 500 ] &&
		has "<faultstring>Current license or ESXi version prohibits execution of the requested operation.</faultstring>" &&
		has "<RestrictedVersionFault xmlns=\"urn:vim25\" xsi:type=\"RestrictedVersion\">"'
	soap "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this><container type=\"Folder\">$root</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"
	check "free: CreateContainerView still works" is "$code" 200
	stop_sim
fi

# ---- 2b. free license with the SSH side: API writes refused, the host's clients write ----
# power_state: the powered state of $vm0 as the API reports it.
power_state() {
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$vm0</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	first val
}
# on_host COMMAND-LINE: run it in the simulated host's shell over the real sshd, with the
# pinned host key only; stdout to $work/out, the exit status to $rc.
on_host() {
	ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" \
		-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ConnectTimeout=10 \
		-i "$CESO_SIM_SSH_KEY" -p "$CESO_SIM_SSH_PORT" "$CESO_SIM_SSH_USER@127.0.0.1" "$1" >"$work/out" 2>"$work/err"
	rc=$?
}
out_has() { grep -qF -- "$1" "$work/out"; }

ssh-keygen -q -t ecdsa -b 256 -N '' -C smoke -f "$work/own_key"
if CESO_SIM_SSH_PUBKEY=$work/own_key.pub start_sim -vms 2 --license free --ssh; then
	check "free+ssh: a key from CESO_SIM_SSH_PUBKEY may log in too" ssh -o BatchMode=yes -o IdentitiesOnly=yes \
		-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" -i "$work/own_key" \
		-p "$CESO_SIM_SSH_PORT" "$CESO_SIM_SSH_USER@127.0.0.1" 'vim-cmd vmsvc/getallvms >/dev/null'
	ssh-keygen -q -t ed25519 -N '' -C stranger -f "$work/stranger_key"
	check "free+ssh: another key may not" eval '! ssh -o BatchMode=yes -o IdentitiesOnly=yes \
		-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" -i "$work/stranger_key" \
		-p "$CESO_SIM_SSH_PORT" "$CESO_SIM_SSH_USER@127.0.0.1" true 2>/dev/null'
	check "free+ssh: exports the SSH port, key, known_hosts and fingerprint" eval '
		[[ $CESO_SIM_SSH_PORT =~ ^[0-9]+$ ]] && [ -s "$CESO_SIM_SSH_KEY" ] && [ -s "$CESO_SIM_SSH_KNOWN_HOSTS" ] &&
		[[ $CESO_SIM_SSH_FINGERPRINT =~ ^SHA256: ]]'
	check "free+ssh: simctl status names cesosim and sshd" eval '"$simctl" status >"$work/out" &&
		out_has "sshd: pid" && out_has "port $CESO_SIM_SSH_PORT"'
	check "free+ssh: the host key is ECDSA P-256 and matches the fingerprint" eval '
		ssh-keyscan -t ecdsa -p "$CESO_SIM_SSH_PORT" 127.0.0.1 2>/dev/null >"$work/scan" &&
		grep -q " ecdsa-sha2-nistp256 " "$work/scan" &&
		[ "$(ssh-keygen -l -E sha256 -f "$work/scan" | awk "{print \$2}")" = "$CESO_SIM_SSH_FINGERPRINT" ]'
	login "$CESO_PASSWORD"
	soap '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
	lm=$(first licenseManager)
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>LicenseManager</type><pathSet>licenses</pathSet></propSet><objectSet><obj type=\"LicenseManager\">$lm</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	check "free+ssh: LicenseManager reports the free edition (esxBasic)" eval '[ "$code" = 200 ] &&
		has "<editionKey>esxBasic</editionKey>" && has "<name>VMware vSphere 6 Hypervisor</name>" && lacks ">eval<"'
	soap "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this><container type=\"Folder\">$root</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"
	retrieve_vms "$(first returnval)"
	vm0=$(grep -o '<obj type="VirtualMachine">[^<]*</obj>' "$work/resp" | head -1 | sed 's/<[^>]*>//g')
	vm1=$(grep -o '<obj type="VirtualMachine">[^<]*</obj>' "$work/resp" | sed -n 2p | sed 's/<[^>]*>//g')
	check "free+ssh: the API says $vm0 is poweredOn" is "$(power_state)" poweredOn

	soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this></PowerOffVM_Task>"
	check "free+ssh: API PowerOffVM_Task fails with RestrictedVersion" eval '[ "$code" = 500 ] &&
		has "<RestrictedVersionFault xmlns=\"urn:vim25\" xsi:type=\"RestrictedVersion\">"'
	soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this></PowerOffVM_Task>" \
		-H "X-Ceso-Local-Ticket: 0000000000000000000000000000000000000000000000000000000000000000"
	check "free+ssh: ... also with a wrong local ticket" eval '[ "$code" = 500 ] && has "xsi:type=\"RestrictedVersion\""'
	check "free+ssh: the VM is still poweredOn" is "$(power_state)" poweredOn

	on_host "vim-cmd vmsvc/power.off $vm0"
	check "free+ssh: ssh vim-cmd vmsvc/power.off works" eval '[ $rc = 0 ] && out_has "Powering off VM:" && ! out_has "fault"'
	check "free+ssh: ... and the API reports poweredOff" is "$(power_state)" poweredOff
	soap "<PowerOnVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm0</_this></PowerOnVM_Task>"
	check "free+ssh: API PowerOnVM_Task fails with RestrictedVersion" eval '[ "$code" = 500 ] && has "xsi:type=\"RestrictedVersion\""'
	on_host "vim-cmd vmsvc/power.on $vm0"
	check "free+ssh: ssh vim-cmd vmsvc/power.on works" eval '[ $rc = 0 ] && out_has "Powering on VM:" && ! out_has "fault"'
	check "free+ssh: ... and the API then reports poweredOn" is "$(power_state)" poweredOn
	on_host "vim-cmd vmsvc/power.getstate $vm0"
	check "free+ssh: power.getstate prints the host's two lines" eval '[ "$(cat "$work/out")" = "$(printf "Retrieved runtime info\nPowered on")" ]'
	on_host "vim-cmd vmsvc/power.on $vm0"
	check "free+ssh: power.on of a running VM prints an InvalidPowerState block, exit status 0" eval '[ $rc = 0 ] &&
		out_has "(vim.fault.InvalidPowerState) {" && out_has "   faultCause = (vmodl.MethodFault) null,"'
	on_host "vim-cmd vmsvc/power.getstate 424242"
	check "free+ssh: an unknown vmid prints NotFound with the id in raw quotes" eval '[ $rc = 0 ] &&
		out_has "msg = \"Unable to find a VM corresponding to \"424242\"\""'

	on_host "vim-cmd vmsvc/getallvms"
	check "free+ssh: getallvms lists the VM with its vmid and .vmx path" eval '[ $rc = 0 ] &&
		head -1 "$work/out" | grep -Eq "^Vmid +Name +File +Guest OS +Version +Annotation$" &&
		grep -Eq "^$vm0 +ha-host_VM0 +\[LocalDS_0\] ha-host_VM0/ha-host_VM0\.vmx +" "$work/out"'
	"$simctl" shim-fault "vim-cmd vmsvc/getallvms ManagedObjectNotFound 1"
	on_host "vim-cmd vmsvc/getallvms; echo ---; vim-cmd vmsvc/getallvms"
	check "free+ssh: shim fault mode: one ManagedObjectNotFound block, then the table" eval '[ $rc = 0 ] &&
		[ "$(head -1 "$work/out")" = "(vmodl.fault.ManagedObjectNotFound) {" ] &&
		sed "1,/^---$/d" "$work/out" | head -1 | grep -q "^Vmid "'

	on_host "vim-cmd vmsvc/snapshot.create $vm0 s1 'first one' 0 0 && vim-cmd vmsvc/snapshot.get $vm0"
	check "free+ssh: snapshot.create over SSH, snapshot.get prints the tree (with Desciption)" eval '[ $rc = 0 ] &&
		out_has "|-ROOT" && out_has "--Snapshot Name        : s1" && out_has "--Snapshot Desciption  : first one"'
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>snapshot</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$vm0</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	check "free+ssh: ... and the API sees the snapshot" eval '[ "$code" = 200 ] && has "<name>s1</name>"'

	# ceso-mkvm's path on a free host: mkdir, a thin copy, a .vmx written in the shell at
	# /vmfs/volumes/…, registervm; the API then shows the VM as the .vmx describes it.
	ds=/vmfs/volumes/LocalDS_0
	on_host "vim-cmd vmsvc/power.off $vm1 >/dev/null && mkdir $ds/web01 &&
		vmkfstools -i $ds/ha-host_VM1/disk1.vmdk -d thin $ds/web01/web01.vmdk >/dev/null &&
		printf '%s = \"%s\"\n' displayName 'web |22q|22' guestOS ubuntu64Guest numvcpus 2 memSize 1536 \
			scsi0.virtualDev pvscsi scsi0:0.present TRUE scsi0:0.fileName web01.vmdk >$ds/web01/web01.vmx &&
		ls $ds/web01 && vim-cmd solo/registervm $ds/web01/web01.vmx"
	newvm=$(tail -1 "$work/out")
	check "free+ssh: mkdir, vmkfstools -i and a .vmx under /vmfs/volumes, then registervm prints the vmid" eval '[ $rc = 0 ] &&
		out_has web01-flat.vmdk && out_has web01.vmx && [[ $newvm =~ ^vm-[0-9]+$ ]]'
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>config.hardware.numCPU</pathSet><pathSet>config.hardware.memoryMB</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$newvm</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	check "free+ssh: ... and the API shows it as the .vmx says" eval '[ "$code" = 200 ] && has ">web &#34;q&#34;<" &&
		has ">2</val>" && has ">1536</val>"'
	on_host "ls /vmfs/volumes/LocalDS_0/nonexistent"
	check "free+ssh: the shell sees only the datastores under /vmfs/volumes" eval '[ $rc != 0 ] &&
		[ "$(ssh -o BatchMode=yes -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" -i "$CESO_SIM_SSH_KEY" \
			-p "$CESO_SIM_SSH_PORT" "$CESO_SIM_SSH_USER@127.0.0.1" "ls /vmfs/volumes")" = LocalDS_0 ]'

	check "free+ssh: GET /folder still works" is "$(control -u "$CESO_USER:$CESO_PASSWORD" "$base/folder/ha-host_VM0/ha-host_VM0.vmx?dsName=LocalDS_0")" 200
	check "free+ssh: PUT /folder is refused (403)" eval '[ "$(control -u "$CESO_USER:$CESO_PASSWORD" -T /dev/null "$base/folder/ha-host_VM0/x.txt?dsName=LocalDS_0")" = 403 ] &&
		has RestrictedVersion'

	on_host 'a=(1 2)'
	check "free+ssh: the shell is BusyBox ash (no bash arrays)" eval '[ $rc != 0 ] && grep -q "syntax error" "$work/err"'
	check "free+ssh: password logins are refused" eval '! ssh -o BatchMode=yes -o PreferredAuthentications=password,keyboard-interactive \
		-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CESO_SIM_SSH_KNOWN_HOSTS" -p "$CESO_SIM_SSH_PORT" \
		"$CESO_SIM_SSH_USER@127.0.0.1" true 2>/dev/null'
	sshd_pid=$(cat "$CESO_SIM_STATE/ssh/pid")
	stop_sim
	# (a zombie counts as ended: in containers PID 1 may never reap it)
	check "free+ssh: simctl stop ended sshd" eval '! ps -o stat= -p "$sshd_pid" | grep -qv "^Z"'
fi

# ---- 3. vCenter model ----
if start_sim -model vpx -vms 2 -fill-mib 1; then
	check "service content says VirtualCenter" is "$api" VirtualCenter
	login "$CESO_PASSWORD"
	check "vpx: Login" is "$code" 200
	soap "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this><container type=\"Folder\">$root</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"
	view=$(first returnval)
	retrieve_vms "$view"
	cp "$work/resp" "$work/vms"
	vm=$(grep -o '<obj type="VirtualMachine">[^<]*</obj>' "$work/resp" | head -1 | sed 's/<[^>]*>//g')
	folder=$(grep -o '<name>parent</name><val [^>]*>[^<]*</val>' "$work/resp" | head -1 | sed 's/.*>\([^<]*\)<\/val>/\1/')
	soap "<CloneVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm</_this><folder type=\"Folder\">$folder</folder><name>clone1</name><spec><location/><template>false</template><powerOn>false</powerOn></spec></CloneVM_Task>"
	task=$(first returnval)
	check "vpx: CloneVM_Task is accepted" eval '[ "$code" = 200 ] && [ -n "$task" ]'
	task_info "$task"
	check "vpx: ... and succeeds" has "<state>success</state>"
	retrieve_vms "$view"
	check "vpx: the clone is in the inventory" has '>clone1</val>'
	soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$pc</_this><specSet><propSet><type>VirtualMachine</type><pathSet>config.hardware.device</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$vm</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
	src_disk=$(first fileName)
	check "vpx: the source keeps its own disk" eval 'matches "$src_disk" "^\[LocalDS_0\] DC0_C0_RP0_VM[01]/disk1.vmdk$"'
	ds_dir=$(curl -sS "${tls[@]}" "$base/_ceso/datastore" | sed 's/.*"LocalDS_0":"\([^"]*\)".*/\1/')
	src_flat=$ds_dir/$(sed 's/^\[LocalDS_0\] //; s/\.vmdk$/-flat.vmdk/' <<<"$src_disk")
	check "vpx: the clone's disk is a copy of the source's" cmp -s "$ds_dir/clone1/clone1-flat.vmdk" "$src_flat"
	stop_sim
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
