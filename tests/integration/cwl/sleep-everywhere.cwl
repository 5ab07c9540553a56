# One record per cluster, each sleeping for ten minutes there.
cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs:
  clusters: string[]
outputs: []
steps:
  sleep:
    run:
      class: CommandLineTool
      inputs:
        where: string
      baseCommand: [sleep, "600"]
      outputs: []
    scatter: where
    in: {where: clusters}
    out: []
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.where)
