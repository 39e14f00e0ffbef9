# The two commands of a new user: `make demo` and `make test`.
PY := .venv/bin/python
FABRIC := .venv/bin/fabric

.PHONY: install demo test proto lab-down bench

install:
	bash deploy/install.sh

demo: install
	$(FABRIC) lab up
	$(FABRIC) group create -n BlogRG -l local -o table
	$(FABRIC) vm show -g BlogRG -n BlogVM >/dev/null 2>&1 || \
	  $(FABRIC) vm create -g BlogRG -n BlogVM --image fabriclab:busybox:lab:latest --size Standard_DS1_v2 \
	    --custom-script examples/sample.sh -o table
	$(FABRIC) vm show -g BlogRG -n BlogVM --instance-view
	$(FABRIC) vm extension show -g BlogRG --vm-name BlogVM -n CustomScriptExtension --logs
	$(FABRIC) vm get-serial-output -g BlogRG -n BlogVM --tail 14

test: install
	$(PY) -m pytest -q tests

lab-down:
	$(FABRIC) lab down

proto:
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. proto/fabric/v1/*.proto

bench: install
	$(PY) bench/provision.py
	$(PY) bench/provision.py --image fabriclab:debian:12:latest
	$(PY) bench/dataplane.py
	$(PY) bench/blob_stream.py
	$(PY) bench/guest_attacks.py
	$(PY) bench/node_api.py
	$(PY) bench/scale.py
	$(PY) bench/agents.py
