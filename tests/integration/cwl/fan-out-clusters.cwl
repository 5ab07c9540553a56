# `name` makes one file per cluster, named after it; `count` runs each where its file's name says:
# which clusters, and how many records, only the run can tell.
cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs: []
outputs:
  counts: {type: "File[]", outputSource: count/count}
steps:
  name:
    run:
      class: CommandLineTool
      inputs: []
      baseCommand: [sh, -c, "echo one > z2222 && printf 'two\\nthree\\n' > z3333"]
      outputs:
        parts: {type: "File[]", outputBinding: {glob: "z*"}}
    in: {}
    out: [parts]
  count:
    run: wc.cwl
    scatter: infile
    in: {infile: name/parts}
    out: [count]
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.infile.basename)
