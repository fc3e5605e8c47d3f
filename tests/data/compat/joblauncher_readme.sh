#!/bin/bash
# The "Usage" section of the joblauncher README (NLeSC/joblauncher, later NLeSC/osmium),
# run as written. Only these differ: the server's address (the README's
# http://localhost:9998 is $BASE), an Authorization header on each curl, and the README's
# placeholders filled in (jobdir: this directory; the optional callback URL: null). The
# README polls and cancels by hand: here a bounded loop polls, and its DELETE goes to a
# second job of ours that would otherwise run for five minutes. Each answer is kept in a
# file for the test to check. Needs: BASE, TOKEN, WORKDIR.
set -euo pipefail
cd "$WORKDIR"

poll() {  # poll URL FILE: GET the status until "done", at most ~60 s
  for _ in $(seq 600); do
    curl -H "Content-Type: application/json" -H 'Accept: application/json' \
    -H "Authorization: Bearer $TOKEN" \
    "$1" > "$2"
    if grep -q '"done":true' "$2"; then return 0; fi
    sleep 0.1
  done
  echo "not done: $(cat "$2")" >&2
  return 1
}

# -- Submit -----------------------------------------------------------------------------
mkdir myjob
cd myjob
echo 'Lorem ipsum' > input_file
echo 'hostname;date;wc -l input_file > output_file' > runme.sh

cat > query.json <<EOF
{
  "jobdir": "$PWD",
  "executable": "/bin/sh",
  "prestaged": ["runme.sh", "input_file"],
  "poststaged": ["output_file"],
  "stderr": "stderr.txt",
  "stdout": "stdout.txt",
  "arguments": ["runme.sh"],
  "status_callback_url": null
}
EOF

curl -H "Content-Type: application/json" -H 'Accept: application/json' \
-H "Authorization: Bearer $TOKEN" \
-i -X POST -d @query.json "$BASE/job" > ../submit.txt

# -- Status -----------------------------------------------------------------------------
location=$(sed -n 's/^[Ll]ocation: *//p' ../submit.txt | tr -d '\r')
poll "$location" ../status.json

# -- Cancel: a job that would run for five minutes --------------------------------------
cd ..
mkdir longjob
cd longjob
cat > query.json <<EOF
{
  "jobdir": "$PWD",
  "executable": "/bin/sleep",
  "arguments": ["300"]
}
EOF
curl -H "Content-Type: application/json" -H 'Accept: application/json' \
-H "Authorization: Bearer $TOKEN" \
-i -X POST -d @query.json "$BASE/job" > ../submit-long.txt
location=$(sed -n 's/^[Ll]ocation: *//p' ../submit-long.txt | tr -d '\r')

curl -H "Content-Type: application/json" -H 'Accept: application/json' \
-H "Authorization: Bearer $TOKEN" \
-X DELETE "$location" -w '%{http_code}' > ../cancel.txt
poll "$location" ../killed.json
