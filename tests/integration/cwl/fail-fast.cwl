# Record 0 fails at once (its stderr says why); every other record would run for ten minutes.
cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  records: int[]
outputs:
  done:
    type: File[]
    outputSource: work/out
steps:
  work:
    run:
      class: CommandLineTool
      inputs:
        n: {type: int, inputBinding: {position: 1}}
      baseCommand: [sh, -c, 'if [ "$0" = 0 ]; then echo "record $0: the input is broken" >&2; exit 3; fi; sleep 600']
      stdout: out.txt
      outputs:
        out: {type: stdout}
    scatter: n
    in: {n: records}
    out: [out]
