cwlVersion: v1.2
class: CommandLineTool
doc: Fixed-effect meta-analysis of the per-cohort summaries, with a table and a forest plot.
baseCommand: python3
inputs:
  script: {type: File, inputBinding: {position: 1}}
  summaries: {type: "File[]", inputBinding: {position: 2}}
outputs:
  table: {type: File, outputBinding: {glob: meta-analysis.tsv}}
  result: {type: File, outputBinding: {glob: meta-analysis.json}}
  plot: {type: File, outputBinding: {glob: forest-plot.png}}
