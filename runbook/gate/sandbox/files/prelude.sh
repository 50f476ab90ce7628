# runbook sandbox prelude (sourced through BASH_ENV)
# Read by every non-interactive bash of a snippet, so subshells and `bash -c` children get it
# too. `aws` always carries the endpoint: the CLI v2 2.9.19 predates AWS_ENDPOINT_URL and v1
# ignores it for sqs and others. The worker fills in @AWS@ and @ENDPOINT@ (shell-quoted).
aws() { command @AWS@ --endpoint-url @ENDPOINT@ "$@"; }
export -f aws
