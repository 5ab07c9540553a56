# Planned only: `count`'s records, and where each goes, come from the files `split` will make.
cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs:
  infile: File
outputs:
  counts: {type: "File[]", outputSource: count/count}
steps:
  split:
    run:
      class: CommandLineTool
      inputs:
        infile: {type: File, inputBinding: {position: 1}}
      baseCommand: [split, -l, "1"]
      outputs:
        parts: {type: "File[]", outputBinding: {glob: "x*"}}
    in: {infile: infile}
    out: [parts]
  count:
    run: ../../integration/cwl/wc.cwl
    scatter: infile
    in: {infile: split/parts}
    out: [count]
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.infile.basename)
