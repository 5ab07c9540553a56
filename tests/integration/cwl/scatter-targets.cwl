# One record per file: each counted on the cluster its record names, its request owned by the
# project its record names ("" for the user's home project there).
cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs:
  files: File[]
  clusters: string[]
  projects: string[]
outputs:
  counts:
    type: File[]
    outputSource: count/count
steps:
  count:
    run: wc-placed.cwl
    scatter: [infile, where, project]
    scatterMethod: dotproduct
    in: {infile: files, where: clusters, project: projects}
    out: [count]
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.where)
        project_uuid: $(inputs.project)
