//! Tests pinned to what docker 20.10.24 (graphdriver, vfs) wrote: every expected string
//! below was produced by `docker import -c …` / `docker commit -c …` followed by `docker save`
//! (the raw `<id>.json`), or is docker's error message after `Error response from daemon: `.

use super::*;

fn changes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The empty `container.Config` docker writes, used to build expectations.
const EMPTY: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;

/// One observation: the `-c` values and `Ok(config JSON)` or `Err(docker's message)`.
type Case = (&'static [&'static str], Result<&'static str, &'static str>);

/// The observations, made with docker 20.10.24.
const DOCKER_CASES: &[Case] = &[
    (
        &[r#"CMD echo hi"#, r#"ENV a=b"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=b"],"Cmd":["/bin/sh","-c","echo hi"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"RUN x"#], Err(r#"run is not a valid change command"#)),
    (&[r#"CMD=x"#], Err(r#"cmd=x is not a valid change command"#)),
    (&[r#"FROM x"#], Err(r#"from is not a valid change command"#)),
    (
        &[r#"SHELL ["a"]"#],
        Err(r#"shell is not a valid change command"#),
    ),
    (&[r#"ADD . /"#], Err(r#"add is not a valid change command"#)),
    (&[r#"ARG x"#], Err(r#"arg is not a valid change command"#)),
    (
        &[r#"MAINTAINER x"#],
        Err(r#"maintainer is not a valid change command"#),
    ),
    (&[r#"FOO x"#], Err(r#"foo is not a valid change command"#)),
    (
        &[r#"STOPSIGNAL SIGKILL"#],
        Err(r#"stopsignal is not a valid change command"#),
    ),
    (
        &[r#"cmd ["a","b"]"#, r#"ENTRYPOINT ["e"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["a","b"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["e"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENTRYPOINT ["e"]"#, r#"CMD c"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","c"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["e"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD []"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":[],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"ENTRYPOINT []"#], Ok(EMPTY)),
    (&[r#"ENTRYPOINT"#], Ok(EMPTY)),
    (
        &[r#"CMD ["a"]"#, r#"ENTRYPOINT e"#, r#"ENTRYPOINT f"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["a"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["/bin/sh","-c","f"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD []"#, r#"ENTRYPOINT e"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["/bin/sh","-c","e"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD"#, r#"ENTRYPOINT e"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["/bin/sh","-c","e"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ONBUILD run echo hi  "#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":["run echo hi  "],"Labels":null}"#,
        ),
    ),
    (
        &[r#"onbuild    RUN   a"#, r#"ONBUILD ADD . /app"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":["RUN   a","ADD . /app"],"Labels":null}"#,
        ),
    ),
    (
        &[r#"ONBUILD   FOO bar"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":["FOO bar"],"Labels":null}"#,
        ),
    ),
    (
        &[r#"ONBUILD ONBUILD RUN x"#],
        Err(r#"Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"#),
    ),
    (
        &[r#"ONBUILD from x"#],
        Err(r#"FROM isn't allowed as an ONBUILD trigger"#),
    ),
    (
        &[r#"ONBUILD"#],
        Err(r#"ONBUILD requires at least one argument"#),
    ),
    (&[r#"ONBUILD ENV x"#], Err(r#"ENV must have two arguments"#)),
    (&[r#"ONBUILD --x RUN a"#], Err(r#"Unknown flag: x"#)),
    (
        &[r#"HEALTHCHECK --interval=5s --retries=3 CMD curl x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["CMD-SHELL","curl x"],"Interval":5000000000,"Retries":3},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"HEALTHCHECK NONE"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["NONE"]},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"HEALTHCHECK --interval=5s NONE"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["NONE"]},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"HEALTHCHECK --interval=1.5m --timeout=2h3m4.5s --start-period=10ms CMD ["a","b"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["CMD","a","b"],"Interval":90000000000,"Timeout":7384500000000,"StartPeriod":10000000},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"HEALTHCHECK --interval=0s CMD x"#],
        Err(r#"Interval "interval" cannot be less than 1ms"#),
    ),
    (
        &[r#"HEALTHCHECK --interval=1us CMD x"#],
        Err(r#"Interval "interval" cannot be less than 1ms"#),
    ),
    (
        &[r#"HEALTHCHECK --retries=0 CMD x"#],
        Err(r#"--retries must be at least 1 (not 0)"#),
    ),
    (
        &[r#"HEALTHCHECK --retries=x CMD x"#],
        Err(r#"strconv.ParseInt: parsing "x": invalid syntax"#),
    ),
    (
        &[r#"HEALTHCHECK --retries=99999999999 CMD x"#],
        Err(r#"strconv.ParseInt: parsing "99999999999": value out of range"#),
    ),
    (
        &[r#"HEALTHCHECK --foo=x CMD x"#],
        Err(r#"Unknown flag: foo"#),
    ),
    (
        &[r#"HEALTHCHECK --interval CMD x"#],
        Err(r#"Missing a value on flag: interval"#),
    ),
    (
        &[r#"HEALTHCHECK --interval=abc CMD x"#],
        Err(r#"time: invalid duration "abc""#),
    ),
    (
        &[r#"HEALTHCHECK --interval=5 CMD x"#],
        Err(r#"time: missing unit in duration "5""#),
    ),
    (
        &[r#"HEALTHCHECK --interval=5x CMD x"#],
        Err(r#"time: unknown unit "x" in duration "5x""#),
    ),
    (
        &[r#"HEALTHCHECK --interval=1s --interval=2s CMD x"#],
        Err(r#"Duplicate flag specified: interval"#),
    ),
    (
        &[r#"HEALTHCHECK NONE x"#],
        Err(r#"HEALTHCHECK NONE takes no arguments"#),
    ),
    (
        &[r#"HEALTHCHECK FOO x"#],
        Err(r#"Unknown type "FOO" in HEALTHCHECK (try CMD)"#),
    ),
    (
        &[r#"HEALTHCHECK CMD"#],
        Err(r#"Missing command after HEALTHCHECK CMD"#),
    ),
    (
        &[r#"HEALTHCHECK cmd x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["CMD-SHELL","x"]},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"HEALTHCHECK"#],
        Err(r#"HEALTHCHECK requires at least one argument"#),
    ),
    (
        &[
            r#"HEALTHCHECK CMD a"#,
            r#"HEALTHCHECK --timeout=3s CMD ["b"]"#,
        ],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Healthcheck":{"Test":["CMD","b"],"Timeout":3000000000},"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#""#], Err(r#"file with no instructions"#)),
    (&[r#"# comment"#], Err(r#"file with no instructions"#)),
    (
        &[
            r#"# escape=`"#,
            r#"ENV a=x`$y b=c\d"#,
            r#"CMD echo `"#,
            r#"  more"#,
        ],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=x$y","b=c\\d"],"Cmd":["/bin/sh","-c","echo   more"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[
            r#"ENV a=1 b="two words" c=x\ y"#,
            r#"ENV d=$a e=${b}-$c f="$a" g='$a'"#,
        ],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=1","b=two words","c=x y","d=1","e=two words-x y","f=1","g=$a"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV foo bar baz  "q"  x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["foo=bar baz  q  x"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV a=1"#, r#"ENV a=2 b=$a"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=2","b=1"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"ENV a"#], Err(r#"ENV must have two arguments"#)),
    (&[r#"ENV =x"#], Err(r#"ENV names can not be blank"#)),
    (
        &[r#"ENV a=1 b"#],
        Err(r#"Syntax error - can't find = in "b". Must be of the form: name=value"#),
    ),
    (&[r#"ENV"#], Err(r#"ENV requires at least one argument"#)),
    (
        &[r#"ENV a=1"#, r#"ENV b=2 a=3"#, r#"ENV c=$a"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=3","b=2","c=3"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[
            r#"ENV H=home"#,
            r#"ENV a=$1$@x$ b=\$x c="\$x\y" d='a\b' e=z\ f=${H:+set}${none:+x}${none:-dflt}${H:-no} g=$H/$H_x/${H}_x h=a"b c"d"#,
        ],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["H=home","a=x$","b=$x","c=$x\\y","d=a\\b","e=z f=setdflthome","g=home//home_x","h=ab cd"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV a=x\"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["a=x"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV a="unterminated"#],
        Err(
            r#"failed to process "\"unterminated": unexpected end of statement while looking for matching double-quote"#,
        ),
    ),
    (
        &[r#"ENV a=${b"#],
        Err(r#"failed to process "${b": missing ':' in substitution"#),
    ),
    (
        &[r#"ENV a=${}"#],
        Err(r#"failed to process "${}": syntax error: bad substitution"#),
    ),
    (
        &[r#"ENV a=${b:?oops}"#],
        Err(r#"failed to process "${b:?oops}": b: oops"#),
    ),
    (
        &[r#"ENV a=${b?}"#],
        Err(r#"failed to process "${b?}": b: is not allowed to be unset"#),
    ),
    (
        &[r#"ENV a=${b:=x}"#],
        Err(r#"failed to process "${b:=x}": unsupported modifier (=) in substitution"#),
    ),
    (
        &[r#"ENV x=<&>é 	"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["x=\u003c\u0026\u003eé"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"LABEL "com.x"="v 1" b=2 a=${a:-def}"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"def","b":"2","com.x":"v 1"}}"#,
        ),
    ),
    (&[r#"LABEL a"#], Err(r#"LABEL must have two arguments"#)),
    (
        &[r#"LABEL a b c"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b c"}}"#,
        ),
    ),
    (
        &[r#"LABEL "a b"=c"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a b":"c"}}"#,
        ),
    ),
    (
        &[r#"LABEL a=1"#, r#"LABEL a=2 b"#],
        Err(r#"Syntax error - can't find = in "b". Must be of the form: name=value"#),
    ),
    (
        &[r#"LABEL b=1 a=2 A=3 _=4"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"A":"3","_":"4","a":"2","b":"1"}}"#,
        ),
    ),
    (
        &[r#"EXPOSE 80 443/udp 8000-8002 127.0.0.1:9000:90/UDP"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"443/udp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{},"8002/tcp":{},"90/udp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV P="81 82""#, r#"EXPOSE $P"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"81/tcp":{},"82/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["P=81 82"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"EXPOSE abc"#], Err(r#"Invalid containerPort: abc"#)),
    (
        &[r#"EXPOSE"#],
        Err(r#"EXPOSE requires at least one argument"#),
    ),
    (
        &[r#"EXPOSE 0 65535 080"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"0/tcp":{},"65535/tcp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"EXPOSE 65536"#], Err(r#"Invalid containerPort: 65536"#)),
    (&[r#"EXPOSE 80/foo"#], Err(r#"Invalid proto: foo"#)),
    (&[r#"EXPOSE 90-80"#], Err(r#"Invalid containerPort: 90-80"#)),
    (
        &[r#"EXPOSE 1-2-3 [::1]:80:81"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"1/tcp":{},"2/tcp":{},"81/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"EXPOSE ::1:82:83"#],
        Err(r#"Invalid ip address ::1: address ::1:: too many colons in address"#),
    ),
    (
        &[r#"EXPOSE [::1:82:83"#],
        Err(r#"Invalid ip address [::1: address [::1:: missing ']' in address"#),
    ),
    (
        &[r#"EXPOSE 1.2.3:80:81"#],
        Err(r#"Invalid ip address: 1.2.3"#),
    ),
    (
        &[r#"EXPOSE 80/"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"EXPOSE /tcp"#],
        Err(r#"No port specified: /tcp<empty>"#),
    ),
    (&[r#"EXPOSE 80 x 70"#], Err(r#"Invalid containerPort: x"#)),
    (
        &[r#"EXPOSE 1000-1001:80"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"EXPOSE 1000-1001:80-82"#],
        Err(r#"Invalid ranges specified for container and host Ports: 80-82 and 1000-1001"#),
    ),
    (
        &[r#"EXPOSE 80/sctp 81/tcp/x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/sctp":{},"81/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"VOLUME ["/a","/b"]"#, r#"VOLUME /c /d"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":{"/a":{},"/b":{},"/c":{},"/d":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"VOLUME"#],
        Err(r#"VOLUME requires at least one argument"#),
    ),
    (
        &[r#"VOLUME [""]"#],
        Err(r#"VOLUME specified can not be an empty string"#),
    ),
    (
        &[r#"VOLUME ["/a", 1]"#],
        Err(r#"when using JSON array syntax, arrays must be comprised of strings only"#),
    ),
    (
        &[r#"VOLUME ["/a" "/b"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":{"/b]":{},"[/a":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV V=/v"#, r#"VOLUME $V ${V}2"#, r#"VOLUME ["$V"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["V=/v"],"Cmd":null,"Image":"","Volumes":{"/v":{},"/v2":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"VOLUME $nothing"#],
        Err(r#"VOLUME specified can not be an empty string"#),
    ),
    (
        &[r#"WORKDIR a"#, r#"WORKDIR b/../c"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/a/c","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR a/"#, r#"WORKDIR ./d/"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/a/d","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR .."#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR "/q u""#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/q u","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR a b"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/a b","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR /x/./y/"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/x/./y/","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"WORKDIR"#],
        Err(r#"WORKDIR requires exactly one argument"#),
    ),
    (&[r#"WORKDIR $nothing"#], Err(r#"cannot normalize nothing"#)),
    (
        &[r#"ENV D=dd"#, r#"WORKDIR /r"#, r#"WORKDIR $D"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["D=dd"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"/r/dd","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"USER u:g"#, r#"ENV U=me"#, r#"USER $U"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"me","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["U=me"],"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"USER a b"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"a b","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (&[r#"USER"#], Err(r#"USER requires exactly one argument"#)),
    (&[r#"USER --foo=1 x"#], Err(r#"Unknown flag: foo"#)),
    (&[r#"CMD --foo x"#], Err(r#"Unknown flag: foo"#)),
    (
        &[r#"CMD echo \
  hi"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","echo   hi"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD echo \"#, r#"hi"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","echo hi"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD echo \"#, r#"# c"#, r#""#, r#"hi"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","echo hi"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD ["a", 1]"#],
        Err(r#"when using JSON array syntax, arrays must be comprised of strings only"#),
    ),
    (
        &[r#"CMD ["a" "b"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","[\"a\" \"b\"]"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD [ "a" , "b\u00e9\n" ] trailing"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["a","bé\n"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD echo "$HOME" \"x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","echo \"$HOME\" \\\"x"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD ["<a&b>"]"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["\u003ca\u0026b\u003e"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENV a=b"#, r#"RUN x"#],
        Err(r#"run is not a valid change command"#),
    ),
    (&[r#"RUN"#], Err(r#"run is not a valid change command"#)),
    (
        &[r#"ENV a"#, r#"RUN x"#],
        Err(r#"ENV must have two arguments"#),
    ),
    (
        &[r#"cmd"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"  CMD   x  y  "#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","x  y"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD	x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","x"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"ENTRYPOINT ["a"] x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":["a"],"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"CMD ["a""#, r#"ENV x=1"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["x=1"],"Cmd":["/bin/sh","-c","[\"a\""],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"﻿CMD x"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","x"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
    (
        &[r#"# escape=x"#],
        Err(r#"invalid escape token 'x' does not match ` or \"#),
    ),
    (
        &[r#"# escape=\"#, r#"# escape=`"#, r#"CMD x"#],
        Err(r#"only one escape parser directive can be used"#),
    ),
    (
        &[r#"# syntax=foo"#, r#"# escape=`"#, r#"CMD x`"#, r#"y"#],
        Ok(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","xy"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
        ),
    ),
];

#[test]
fn changes_match_docker_20_10() {
    for (list, want) in DOCKER_CASES {
        let got = ContainerConfig::default()
            .apply_changes(&changes(list), "linux", Compat::Docker20_10)
            .map(|c| c.to_json());
        let got = got.as_ref().map(String::as_str).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(String::from), "changes {list:?}");
    }
}

#[test]
fn refused_keyword_is_reported_lowercased() {
    for (input, keyword) in [
        ("RUN x", "run"),
        ("CMD=x", "cmd=x"),
        ("Shell [\"a\"]", "shell"),
    ] {
        let err = ContainerConfig::default()
            .apply_changes(&changes(&[input]), "linux", Compat::Docker20_10)
            .unwrap_err();
        assert_eq!(err, ChangeError::NotAllowed(keyword.into()), "{input:?}");
    }
}

#[test]
fn stopsignal_only_with_docker23_compat() {
    for (input, want) in [
        ("STOPSIGNAL SIGKILL", Ok("SIGKILL")),
        ("STOPSIGNAL 9", Ok("9")),
        ("STOPSIGNAL rtmin+3", Ok("rtmin+3")),
        ("STOPSIGNAL foo", Err("Invalid signal: foo")),
        ("STOPSIGNAL 0", Err("Invalid signal: 0")),
        ("STOPSIGNAL a b", Err("Invalid signal: a b")),
        (
            "STOPSIGNAL",
            Err("STOPSIGNAL requires exactly one argument"),
        ),
    ] {
        let got = ContainerConfig::default()
            .apply_changes(&changes(&[input]), "linux", Compat::Docker23)
            .map(|c| c.stop_signal)
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            want.map(String::from).map_err(String::from),
            "{input:?}"
        );
    }
    let json = ContainerConfig::default()
        .apply_changes(&changes(&["STOPSIGNAL SIGINT"]), "linux", Compat::Docker23)
        .unwrap()
        .to_json();
    assert!(
        json.ends_with(r#""Labels":null,"StopSignal":"SIGINT"}"#),
        "{json}"
    );
}

#[test]
fn only_linux_is_supported() {
    let err = ContainerConfig::default().apply_changes(&[], "windows", Compat::default());
    assert_eq!(
        err.unwrap_err().to_string(),
        "operating system is not supported"
    );
}

/// `docker import -m 'my <msg>' --platform linux/arm64/v8 -c 'CMD ["sh"]' -c 'ENV A=1'
/// -c 'EXPOSE 80'`: byte-identical apart from `created`. docker 20.10 wrote `amd64` and no
/// variant despite `--platform`, so that is what the caller passes here.
const DOCKER_IMPORT: &str = r#"{"architecture":"amd64","comment":"my \u003cmsg\u003e","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2024-01-02T03:04:05.123456789Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2024-01-02T03:04:05.123456789Z","comment":"my \u003cmsg\u003e"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:eacefbd6106b8327fb0718e722974d76da1d00a5d31550e05dd370d915b5faed"]}}"#;

#[test]
fn import_config_matches_docker_bytes() {
    let diff_id =
        Digest::parse(r#"sha256:eacefbd6106b8327fb0718e722974d76da1d00a5d31550e05dd370d915b5faed"#)
            .unwrap();
    let platform = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: String::new(),
    };
    let list = changes(&["CMD [\"sh\"]", "ENV A=1", "EXPOSE 80"]);
    let mut opts = ImportConfigOptions {
        changes: &list,
        comment: Some("my <msg>"),
        platform: &platform,
        created: "2024-01-02T03:04:05.123456789Z",
        diff_id: &diff_id,
        docker_version: Some("20.10.24+dfsg1"),
        compat: Compat::Docker20_10,
    };
    assert_eq!(
        String::from_utf8(import_config(&opts).unwrap()).unwrap(),
        DOCKER_IMPORT
    );

    // No -m, no changes, no docker_version, a variant: the keys docker would write for them.
    let arm = Platform {
        os: "linux".into(),
        architecture: "arm".into(),
        variant: "v7".into(),
    };
    opts.changes = &[];
    opts.comment = Some("");
    opts.platform = &arm;
    opts.docker_version = None;
    let want = format!(
        r#"{{"architecture":"arm","comment":"Imported from -","config":{EMPTY},"container_config":{EMPTY},"created":"2024-01-02T03:04:05.123456789Z","history":[{{"created":"2024-01-02T03:04:05.123456789Z","comment":"Imported from -"}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}},"variant":"v7"}}"#
    );
    assert_eq!(
        String::from_utf8(import_config(&opts).unwrap()).unwrap(),
        want
    );

    let bad = Platform {
        os: "windows".into(),
        ..platform.clone()
    };
    opts.platform = &bad;
    assert_eq!(
        import_config(&opts),
        Err(ChangeError::UnsupportedOs("windows".into()))
    );
}

/// `docker inspect -f "{{json .Config}}"` of a container created from an image imported with
/// `ENV PATH=/usr/bin A=1`, `LABEL l1=x`, `ENTRYPOINT ["/e"]`, `CMD ["c"]`,
/// `HEALTHCHECK --interval=7s CMD x`, `VOLUME /v`.
const CONTAINER_CONFIG: &str = r#"{"Hostname":"e47cf51d4fe3","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/bin","A=1"],"Cmd":["c"],"Healthcheck":{"Test":["CMD-SHELL","x"],"Interval":7000000000},"Image":"hoistchg:base","Volumes":{"/v":{}},"WorkingDir":"","Entrypoint":["/e"],"OnBuild":null,"Labels":{"l1":"x"}}"#;

#[test]
fn commit_config_matches_docker() {
    let base: Value = serde_json::from_str(CONTAINER_CONFIG).unwrap();
    // from_json + to_json reproduce docker's bytes.
    assert_eq!(
        ContainerConfig::from_json(&base).unwrap().to_json(),
        CONTAINER_CONFIG
    );
    for (list, want) in [
        // An empty ENTRYPOINT does not survive commit's merge with the container config.
        (&["ENTRYPOINT []"][..], CONTAINER_CONFIG.to_string()),
        (
            &[
                "ENV B=$A:$PATH",
                "LABEL l2=y",
                "HEALTHCHECK --timeout=2s CMD y",
                "USER u",
            ][..],
            CONTAINER_CONFIG
                .replace(r#""User":"""#, r#""User":"u""#)
                .replace(r#""A=1"]"#, r#""A=1","B=1:/usr/bin"]"#)
                .replace(
                    r#""x"],"Interval":7000000000"#,
                    r#""y"],"Interval":7000000000,"Timeout":2000000000"#,
                )
                .replace(r#"{"l1":"x"}"#, r#"{"l1":"x","l2":"y"}"#),
        ),
        (
            &["CMD", "WORKDIR w"][..],
            CONTAINER_CONFIG
                .replace(r#""Cmd":["c"]"#, r#""Cmd":["/bin/sh","-c"]"#)
                .replace(r#""WorkingDir":"""#, r#""WorkingDir":"/w""#),
        ),
    ] {
        let got = commit_config(&base, &changes(list), Compat::Docker20_10).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want, "{list:?}");
    }
    // Labels become {} in a commit even when nobody set one.
    let got = commit_config(&Value::Null, &changes(&["USER x"]), Compat::Docker20_10).unwrap();
    assert!(String::from_utf8(got).unwrap().ends_with(r#""Labels":{}}"#));
}

#[test]
fn from_json_is_lenient_like_go() {
    let v: Value = serde_json::from_str(
        r#"{"cmd":"sh","ENTRYPOINT":null,"Shell":["/bin/bash","-c"],"StopTimeout":5,"Extra":1}"#,
    )
    .unwrap();
    let c = ContainerConfig::from_json(&v).unwrap();
    assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(c.entrypoint, None);
    // A configured Shell is what shell-form commands get.
    let c = c
        .apply_changes(&changes(&["ENTRYPOINT run"]), "linux", Compat::default())
        .unwrap();
    assert_eq!(c.entrypoint, Some(changes(&["/bin/bash", "-c", "run"])));
    assert!(
        c.to_json()
            .ends_with(r#""StopTimeout":5,"Shell":["/bin/bash","-c"]}"#)
    );
    let bad: Value = serde_json::from_str(r#"{"Env":"x"}"#).unwrap();
    assert!(matches!(
        ContainerConfig::from_json(&bad),
        Err(ChangeError::BadConfig(_))
    ));
}
