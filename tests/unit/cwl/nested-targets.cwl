# Planned only: a step's target, a tool's own, the workflow's, and a subworkflow step's.
cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  SubworkflowFeatureRequirement: {}
hints:
  arv:ClusterTarget: {cluster_id: z2222}
inputs:
  where: string
outputs: []
steps:
  by_step:
    run: hinted.cwl
    in: {where: where}
    out: []
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.where)}
  by_tool:
    run: hinted.cwl
    in: {where: where}
    out: []
  by_workflow:
    run: {class: CommandLineTool, inputs: {where: string}, baseCommand: "true", outputs: []}
    in: {where: where}
    out: []
  inner:
    run:
      class: Workflow
      inputs: {where: string}
      outputs: []
      steps:
        deep:
          run: {class: CommandLineTool, inputs: {where: string}, baseCommand: "true", outputs: []}
          in: {where: where}
          out: []
    in: {where: where}
    out: []
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.where)}
