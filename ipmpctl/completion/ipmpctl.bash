# bash completion for ipmpctl(8)                                  -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/ipmpctl.
#
# Verbs and options are completed from the lists below (keep them in step with
# ipmpctl --help; tests/integration/test_ipmpctl.py checks that they are).
# Group, interface and address names come from the running daemon, through ipmpctl
# itself (`ipmpctl -P -o FIELD show VIEW`); when mpathd cannot be reached nothing is
# offered and nothing is printed.

# _ipmpctl_live VIEW FIELD: the values of one field of a show view, one per line.
# Called from _ipmpctl, whose `words` it sees: words[0] is the ipmpctl being completed.
_ipmpctl_live() {
    local cmd=${words[0]}
    local -a run=("$cmd" -P -o "$2" show "$1")
    # A daemon that does not answer must not hang the shell.
    if type -P timeout >/dev/null 2>&1; then
        run=(timeout 2 "${run[@]}")
    fi
    "${run[@]}" 2>/dev/null </dev/null
}

_ipmpctl_groups() { _ipmpctl_live groups groupname; }
_ipmpctl_interfaces() { _ipmpctl_live interfaces interface; }
_ipmpctl_addresses() { _ipmpctl_live addresses address | sed 's|/.*||'; }

_ipmpctl() {
    local cur prev words cword
    if declare -F _get_comp_words_by_ref >/dev/null; then
        # bash-completion: keep IPv6 addresses (':') in one word.
        _get_comp_words_by_ref -n : cur prev words cword
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${words[cword]}
        prev=""
        ((cword > 0)) && prev=${words[cword - 1]}
    fi
    COMPREPLY=()

    local verbs="show probes group address offline online failover move reload wait monitor shared"
    local global_opts="-o --output -P --parsable --help --version"
    local fields="json all groupname group state fdt interfaces interface active flags link
                  probe address inbound outbound mode testaddr targets time netrtt rtt rttavg
                  target rttdev holder reason detail level proto local remote direction origin"

    # The value of an option that takes one.
    case $prev in
        -o | --output)
            mapfile -t COMPREPLY < <(compgen -W "$fields" -- "${cur,,}")
            return 0
            ;;
        --count | --timeout | --header-every | --interface)
            return 0 # a number or a new name: nothing to offer
            ;;
    esac

    # The words typed so far, without options and option values: verb, sub-verb, args.
    local -a args=()
    local i w
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            -o | --output | --count | --timeout | --header-every | --interface) ((i++)) ;;
            -*) ;;
            *) args+=("$w") ;;
        esac
    done
    local verb=${args[0]-} sub=${args[1]-}
    local nargs=$((${#args[@]} - 1)) # positional words after the verb

    if [[ $cur == -* ]]; then
        local opts=$global_opts
        case $verb in
            probes) opts+=" --count --header-every" ;;
            monitor) opts+=" --probes --count" ;;
            wait) opts+=" --timeout" ;;
            group)
                case $sub in
                    create) opts+=" --interface" ;;
                    add) opts+=" --standby" ;;
                esac
                ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return 0
    fi

    local candidates=""
    case $verb in
        "") candidates=$verbs ;;
        show)
            case $nargs in
                0) candidates="groups interfaces addresses targets shared registry associations" ;;
                1) [[ $sub == associations ]] && candidates=$(_ipmpctl_live shared address) ;;
            esac
            ;;
        shared)
            case $nargs in
                0) candidates="takeover release import" ;;
                1) candidates=$(_ipmpctl_live shared address) ;;
                2) [[ $sub == import ]] && { mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0; } ;;
            esac
            ;;
        group)
            case $nargs in
                0) candidates="create destroy add remove" ;;
                1)
                    case $sub in
                        destroy | add) candidates=$(_ipmpctl_groups) ;;
                        remove) candidates=$(_ipmpctl_interfaces) ;;
                    esac
                    ;;
                2) [[ $sub == add ]] && candidates=$(_ipmpctl_interfaces) ;;
            esac
            ;;
        address)
            case $nargs in
                0) candidates="add remove" ;;
                1) candidates=$(_ipmpctl_groups) ;;
                2) [[ $sub == remove ]] && candidates=$(_ipmpctl_addresses) ;;
            esac
            ;;
        offline | online | failover) ((nargs == 0)) && candidates=$(_ipmpctl_interfaces) ;;
        move)
            case $nargs in
                0) candidates=$(_ipmpctl_addresses) ;;
                1) candidates=$(_ipmpctl_interfaces) ;;
            esac
            ;;
        wait)
            case $nargs in
                0) candidates="group interface" ;;
                1)
                    case $sub in
                        group) candidates=$(_ipmpctl_groups) ;;
                        interface) candidates=$(_ipmpctl_interfaces) ;;
                    esac
                    ;;
                2)
                    case $sub in
                        group) candidates="ok degraded failed" ;;
                        interface) candidates="ok failed offline unknown" ;;
                    esac
                    ;;
            esac
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
    # With bash-completion, strip what bash keeps before a ':' of the word.
    if declare -F __ltrim_colon_completions >/dev/null; then
        __ltrim_colon_completions "$cur"
    fi
    return 0
}

complete -F _ipmpctl ipmpctl
