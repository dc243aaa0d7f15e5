# Changes to a VM's identity made behind ceso's back, as another client (the
# host UI, govc, vim-cmd) would: plain SOAP over curl against the simulator.
#
#   load helpers/identity
#   rename_vm vm-12 newname         # Rename_Task: same id and uuid, new name
#   reregister_vm vm-12             # UnregisterVM + RegisterVM_Task of its .vmx:
#                                   # new id, same uuid and name (prints the new id)
#   saved_record NAME               # the VM's ceso-ls record, compact

_id_xml() {
  local s=$1
  s=${s//&/&amp;}
  s=${s//</&lt;}
  s=${s//>/&gt;}
  printf '%s' "$s"
}

saved_record() { ceso-ls --json | jq -c --arg n "$1" 'select(.name == $n)'; }

rename_vm() {
  raw_login
  raw_soap "<Rename_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$1</_this><newName>$(_id_xml "$2")</newName></Rename_Task>" >/dev/null
  local i
  for i in $(seq 50); do
    [ "$(ceso-ls --json | jq -r --arg id "$1" 'select(.id == $id) | .name')" = "$2" ] && return 0
    sleep 0.1
  done
  echo "rename of $1 to $2 did not happen" >&2
  return 1
}

reregister_vm() {
  local rec name vmx i new
  rec=$(ceso-ls --json | jq -c --arg id "$1" 'select(.id == $id)')
  name=$(jq -r .name <<<"$rec")
  vmx=$(jq -r .vmx <<<"$rec")
  raw_login
  # Registered again in the VM's own folder and pool (ha-folder-vm and
  # ha-root-pool on a host, others on vCenter).
  local props folder pool
  props=$(raw_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$(raw_ref pc)</_this><specSet><propSet><type>VirtualMachine</type><pathSet>parent</pathSet><pathSet>resourcePool</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$1</obj></objectSet></specSet><options/></RetrievePropertiesEx>") || return 1
  folder=$(grep -o '<val[^>]*type="Folder"[^>]*>[^<]*' <<<"$props" | sed 's/.*>//')
  pool=$(grep -o '<val[^>]*type="ResourcePool"[^>]*>[^<]*' <<<"$props" | sed 's/.*>//')
  raw_soap "<UnregisterVM xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$1</_this></UnregisterVM>" >/dev/null || return 1
  raw_soap "<RegisterVM_Task xmlns=\"urn:vim25\"><_this type=\"Folder\">$folder</_this><path>$(_id_xml "$vmx")</path><name>$(_id_xml "$name")</name><asTemplate>false</asTemplate><pool type=\"ResourcePool\">$pool</pool></RegisterVM_Task>" >/dev/null || return 1
  for i in $(seq 50); do
    new=$(ceso-ls --json | jq -r --arg n "$name" 'select(.name == $n) | .id')
    if [ -n "$new" ] && [ "$new" != "$1" ]; then
      echo "$new"
      return 0
    fi
    sleep 0.1
  done
  echo "re-registration of $1 did not happen" >&2
  return 1
}
